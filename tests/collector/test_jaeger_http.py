from __future__ import annotations

import gzip
import json

import pytest

from spanlake.collector.jaeger_http import make_app
from spanlake.collector.sampling import SamplingStrategies
from tests.collector.jaeger_support import ListWriter, OverloadedWriter
from tests.jaeger_model import thrift_batch_bytes
from tests.paths import FIXTURES
from tests.query.client import TestClient

BATCH = thrift_batch_bytes(json.loads(
    (FIXTURES / "jaeger" / "thrift-jaeger-to-domain" / "thrift_batch_02.json").read_text()))


@pytest.fixture
def writer() -> ListWriter:
    return ListWriter()


@pytest.fixture
def client(writer: ListWriter) -> TestClient:
    return TestClient(make_app(writer, SamplingStrategies(), max_body_bytes=64 * 1024))


@pytest.mark.parametrize("content_type", ["application/x-thrift", "application/vnd.apache.thrift.binary",
                                          "application/x-thrift; charset=binary"])
def test_thrift_batch_is_accepted_with_202_and_written(client: TestClient, writer: ListWriter,
                                                       content_type: str) -> None:
    response = client.post("/api/traces", content=BATCH, headers={"Content-Type": content_type})
    assert response.status_code == 202
    rows = writer.rows()
    assert [r["service_name"] for r in rows] == ["api", "api"]
    assert rows[0]["trace_id"].hex() == "0000000000000000" + "52969a8955571a3f"


def test_gzip_body_is_accepted(client: TestClient, writer: ListWriter) -> None:
    response = client.post("/api/traces", content=gzip.compress(BATCH),
                           headers={"Content-Type": "application/x-thrift", "Content-Encoding": "gzip"})
    assert response.status_code == 202
    assert len(writer.rows()) == 2


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", ""])
def test_other_content_types_get_400_unsupported(client: TestClient, writer: ListWriter,
                                                 content_type: str) -> None:
    response = client.post("/api/traces", content=BATCH, headers={"Content-Type": content_type})
    assert response.status_code == 400
    assert response.text.startswith("Unsupported content type")
    assert writer.tables == []


@pytest.mark.parametrize("body", [b"garbage \xff\xfe", BATCH[:-7], b"", BATCH + b"\x01"])
def test_malformed_body_gets_400_and_nothing_is_written(client: TestClient, writer: ListWriter,
                                                        body: bytes) -> None:
    response = client.post("/api/traces", content=body, headers={"Content-Type": "application/x-thrift"})
    assert response.status_code == 400
    assert response.text.startswith("Unable to process request body: thrift:")
    assert writer.tables == []
    again = client.post("/api/traces", content=BATCH, headers={"Content-Type": "application/x-thrift"})
    assert again.status_code == 202  # the server is still taking spans


def test_bad_gzip_gets_400(client: TestClient, writer: ListWriter) -> None:
    response = client.post("/api/traces", content=b"\x1f\x8bnot gzip",
                           headers={"Content-Type": "application/x-thrift", "Content-Encoding": "gzip"})
    assert response.status_code == 400
    assert writer.tables == []


def test_body_over_the_cap_gets_413(client: TestClient, writer: ListWriter) -> None:
    response = client.post("/api/traces", content=b"\0" * (64 * 1024 + 1),
                           headers={"Content-Type": "application/x-thrift"})
    assert response.status_code == 413
    bomb = gzip.compress(b"\0" * (1024 * 1024))
    response = client.post("/api/traces", content=bomb,
                           headers={"Content-Type": "application/x-thrift", "Content-Encoding": "gzip"})
    assert response.status_code == 413
    assert writer.tables == []


def test_overloaded_store_gets_503_with_retry_after() -> None:
    client = TestClient(make_app(OverloadedWriter(), SamplingStrategies()))
    response = client.post("/api/traces", content=BATCH, headers={"Content-Type": "application/x-thrift"})
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"


def test_sampling_is_served_on_the_collector_port(client: TestClient) -> None:
    response = client.get("/api/sampling", params={"service": "api"})
    assert response.status_code == 200
    assert response.json() == {"strategyType": "PROBABILISTIC",
                               "probabilisticSampling": {"samplingRate": 0.001}}
    assert client.get("/api/sampling").status_code == 400
