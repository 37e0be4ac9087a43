from __future__ import annotations

import asyncio
import gzip
import zlib
from pathlib import Path

import pyarrow as pa
import pytest

from spanlake.collector.zipkin_http import make_app
from spanlake.storage.api import StoreOverloaded
from tests.collector.zipkin_payloads import (
    DESER,
    OTEL_RECEIVER,
    RECEIVER_HTTP,
    THRIFT_TO_DOMAIN,
    proto_bytes,
    thrift_fixture_bytes,
)
from tests.paths import FIXTURES
from tests.query.client import TestClient

V1, V2 = "/api/v1/spans", "/api/v2/spans"
JSON, PROTO, THRIFT = "application/json", "application/x-protobuf", "application/x-thrift"


class ListWriter:
    def __init__(self):
        self.tables: list[pa.Table] = []
        self.ran_on_event_loop = False

    def write(self, spans: pa.Table) -> None:
        try:
            asyncio.get_running_loop()
            self.ran_on_event_loop = True
        except RuntimeError:
            pass
        self.tables.append(spans)

    def rows(self):
        return [row for t in self.tables for row in t.to_pylist()]


class OverloadedWriter:
    def write(self, spans: pa.Table) -> None:
        raise StoreOverloaded()


@pytest.fixture
def writer():
    return ListWriter()


@pytest.fixture
def client(writer):
    return TestClient(make_app(writer))


def raw(path: Path) -> bytes:
    return path.read_bytes()


# Every Zipkin fixture upstream keeps, how it is posted, and the services and span count it stores.
FIXTURE_POSTS = [
    (DESER / "zipkin_01.json", V2, JSON, raw, {"foo"}, 1),
    (DESER / "zipkin_02.json", V2, JSON, raw, {"bar"}, 1),
    (DESER / "zipkin_03.json", V2, JSON, raw, {"schemas-service"}, 1),
    (DESER / "zipkin_v1_merged_spans.json", V2, JSON, raw, {"first_service"}, 2),
    (DESER / "zipkin_v1_merged_spans.json", V1, JSON, raw, {"first_service"}, 2),
    (DESER / "zipkin_proto_01.json", V2, PROTO, proto_bytes, {"foo"}, 1),
    (DESER / "zipkin_proto_02.json", V2, PROTO, proto_bytes, {"bar"}, 1),
    (RECEIVER_HTTP / "zipkin_proto_02.json", V2, PROTO, proto_bytes, {"bar"}, 1),
    (RECEIVER_HTTP / "zipkin_thrift_v1_merged_spans.json", V1, THRIFT, thrift_fixture_bytes,
     {"empty-service-name"}, 3),
    (THRIFT_TO_DOMAIN / "zipkin_01.json", V1, THRIFT, thrift_fixture_bytes, {"service-x", "service-y"}, 3),
    (THRIFT_TO_DOMAIN / "zipkin_02.json", V1, THRIFT, thrift_fixture_bytes, {"service-x"}, 1),
    (THRIFT_TO_DOMAIN / "zipkin_03.json", V1, THRIFT, thrift_fixture_bytes, {"service-x"}, 1),
    (OTEL_RECEIVER / "sample3.json", V2, JSON, raw, {"missing-service-name"}, 1),
    (OTEL_RECEIVER / "sample4.json", V2, JSON, raw, {"missing-service-name"}, 1),
]


@pytest.mark.parametrize(("path", "url", "content_type", "encode", "services", "count"), FIXTURE_POSTS,
                         ids=[f"{p.parent.name}/{p.name}->{u}" for p, u, *_ in FIXTURE_POSTS])
def test_every_zipkin_fixture_is_accepted(client, writer, path, url, content_type, encode, services, count):
    response = client.post(url, content=encode(path), headers={"Content-Type": content_type})
    assert response.status_code == 202, response.text
    rows = writer.rows()
    assert len(rows) == count
    assert {r["service_name"] for r in rows} == services
    assert not writer.ran_on_event_loop


def test_the_fixture_table_covers_every_zipkin_fixture_on_disk():
    on_disk = {p for folder in (DESER, RECEIVER_HTTP, OTEL_RECEIVER) for p in folder.glob("*.json")}
    on_disk |= set(THRIFT_TO_DOMAIN.glob("zipkin_*.json"))  # domain_* are Jaeger's expected outputs
    assert on_disk == {p for p, *_ in FIXTURE_POSTS}
    assert all(p.is_relative_to(FIXTURES) for p in on_disk)


def test_json_is_the_default_without_a_content_type(client, writer):
    response = client.post(V2, content=raw(DESER / "zipkin_01.json"), headers={"Content-Type": ""})
    assert response.status_code == 202
    assert len(writer.rows()) == 1


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "raw-deflate"])
def test_compressed_bodies_are_accepted(client, writer, encoding):
    body = raw(DESER / "zipkin_03.json")
    if encoding == "gzip":
        packed = gzip.compress(body)
    elif encoding == "deflate":
        packed = zlib.compress(body)
    else:
        c = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        packed = c.compress(body) + c.flush()
    header = "deflate" if encoding.endswith("deflate") else encoding
    response = client.post(V2, content=packed, headers={"Content-Type": JSON, "Content-Encoding": header})
    assert response.status_code == 202, response.text
    assert writer.rows()[0]["name"] == "send"


def test_empty_report_is_accepted_and_writes_nothing(client, writer):
    assert client.post(V2, content=b"[]", headers={"Content-Type": JSON}).status_code == 202
    assert writer.tables == []


@pytest.mark.parametrize(("url", "content_type", "body", "status", "message"), [
    (V2, JSON, b"garbage", 400, "invalid JSON"),
    (V2, JSON, b'[{"traceId":"1","id":"zz"}]', 400, "span 0: id: not hex"),
    (V1, JSON, b'{"spans": []}', 400, "expected a JSON array"),
    (V2, PROTO, proto_bytes(DESER / "zipkin_proto_01.json")[:40], 400, "not a Zipkin protobuf"),
    (V1, THRIFT, thrift_fixture_bytes(THRIFT_TO_DOMAIN / "zipkin_01.json")[:50], 400, "truncated"),
    (V2, "application/xml", b"<spans/>", 415, "unsupported content type 'application/xml'"),
    (V2, THRIFT, b"\x0c", 415, "unsupported content type"),  # Thrift is v1 only
    (V1, PROTO, b"\x0a\x00", 415, "unsupported content type"),  # protobuf is v2 only
])
def test_bad_input_gets_a_clear_error_and_stores_nothing(client, writer, url, content_type, body, status,
                                                          message):
    response = client.post(url, content=body, headers={"Content-Type": content_type})
    assert response.status_code == status
    assert message in response.text
    assert writer.tables == []


def test_one_bad_span_rejects_the_whole_batch(client, writer):
    body = b'[{"traceId":"1","id":"2","name":"ok"},{"traceId":"1","id":"3","timestamp":"soon"}]'
    response = client.post(V2, content=body, headers={"Content-Type": JSON})
    assert response.status_code == 400 and "span 1: timestamp" in response.text
    assert writer.tables == []


@pytest.mark.parametrize(("encoding", "body", "status"), [
    ("br", b"whatever", 415),
    ("gzip", b"not gzip at all", 400),
    ("gzip", gzip.compress(b"[]")[:-6], 400),
])
def test_bad_encodings_are_rejected(client, writer, encoding, body, status):
    response = client.post(V2, content=body, headers={"Content-Type": JSON, "Content-Encoding": encoding})
    assert response.status_code == status
    assert writer.tables == []


def test_bodies_over_the_cap_get_413_before_and_after_decompression(writer):
    client = TestClient(make_app(writer, max_body_bytes=2000))
    big = b"[" + b" " * 4000 + b"]"
    assert client.post(V2, content=big, headers={"Content-Type": JSON}).status_code == 413
    bomb = gzip.compress(b"[" + b" " * 1_000_000 + b"]")
    assert len(bomb) < 2000  # passes the wire cap, inflates 500-fold
    response = client.post(V2, content=bomb, headers={"Content-Type": JSON, "Content-Encoding": "gzip"})
    assert response.status_code == 413
    assert writer.tables == []


def test_store_overload_gets_503_with_retry_after():
    client = TestClient(make_app(OverloadedWriter()))
    response = client.post(V2, content=raw(DESER / "zipkin_01.json"), headers={"Content-Type": JSON})
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
