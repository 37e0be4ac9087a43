"""``/api/sql`` in-process: request forms, every output format, JSON-safe values, errors, limits, attacks."""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi import FastAPI

from spanlake.query.sql import router
from spanlake.storage.sql import SqlEngine
from spanlake.storage.store import SegmentStore
from tests.query.client import TestClient
from tests.storage.sql_support import ATTACKS, HEAVY, all_spans, attack, load_store
from tests.waiting import until

EXAMPLE_SPAN = ("SELECT trace_id, span_id, name, start_time, span_id_bytes FROM spans "
                "WHERE trace_id = '00000000000000000000000000000011' AND span_id = '0000000000000006'")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SegmentStore]:
    s = load_store(tmp_path_factory.mktemp("sqlapi") / "data")
    yield s
    s.close()


def client_for(engine: SqlEngine) -> TestClient:
    app = FastAPI()
    app.include_router(router(engine))
    return TestClient(app)


@pytest.fixture(scope="module")
def client(store: SegmentStore) -> Iterator[TestClient]:
    engine = SqlEngine(store.snapshot, max_rows=1000)
    with client_for(engine) as c:
        yield c
    engine.close()


def test_post_json_returns_columns_rows_and_truncation(client: TestClient) -> None:
    r = client.post("/api/sql", json={"query": "SELECT count(*) AS n FROM spans"})
    assert r.status_code == 200
    body = r.json()
    assert body["columns"] == ["n"] and body["rows"] == [[all_spans().num_rows]]
    assert body["truncated"] is False and body["elapsed_ms"] > 0


def test_post_text_body_and_get_give_the_same_answer(client: TestClient) -> None:
    query = "SELECT service_name, count(*) FROM spans GROUP BY 1 ORDER BY 1"
    posted = client.post("/api/sql", content=query, headers={"Content-Type": "text/plain"}).json()
    got = client.get("/api/sql", params={"q": query}).json()
    assert posted["rows"] == got["rows"] and len(got["rows"]) > 30


def test_values_are_json_safe(client: TestClient) -> None:
    row = client.get("/api/sql", params={"q": EXAMPLE_SPAN}).json()["rows"]
    assert row == [["00000000000000000000000000000011", "0000000000000006", "example-operation-3",
                    "2017-01-26T16:46:31.639875000", "0000000000000006"]]
    big = client.get("/api/sql", params={"q": "SELECT 9007199254740993 AS big, 42 AS small, "
                                              "'NaN'::DOUBLE AS nan, [1, 2] AS list, {'a': 1} AS obj"}).json()
    assert big["rows"] == [["9007199254740993", 42, "NaN", [1, 2], {"a": 1}]]


def test_max_rows_truncates_and_says_so(client: TestClient) -> None:
    body = client.post("/api/sql", json={"query": "SELECT * FROM spans", "max_rows": 3}).json()
    assert len(body["rows"]) == 3 and body["truncated"] is True
    body = client.get("/api/sql", params={"q": "SELECT * FROM spans", "max_rows": 2}).json()
    assert len(body["rows"]) == 2 and body["truncated"] is True


def test_csv_by_format_parameter_and_by_accept_header(client: TestClient) -> None:
    by_param = client.get("/api/sql", params={"q": EXAMPLE_SPAN, "format": "csv"})
    by_accept = client.get("/api/sql", params={"q": EXAMPLE_SPAN}, headers={"Accept": "text/csv"})
    assert by_param.content == by_accept.content
    assert by_param.headers["content-type"].startswith("text/csv")
    assert by_param.headers["x-spanlake-truncated"] == "false"
    rows = list(csv.reader(io.StringIO(by_param.text)))
    assert rows == [["trace_id", "span_id", "name", "start_time", "span_id_bytes"],
                    ["00000000000000000000000000000011", "0000000000000006", "example-operation-3",
                     "2017-01-26T16:46:31.639875000", "0000000000000006"]]


def test_csv_writes_nested_values_as_json(client: TestClient) -> None:
    r = client.get("/api/sql", params={"q": "SELECT services FROM traces WHERE trace_id = "
                                            "'00000000000000000000000000000011'", "format": "csv"})
    assert list(csv.reader(io.StringIO(r.text)))[1] == [
        '["example-service-1","example-service-2","example-service-3"]']


def test_arrow_stream_keeps_duckdb_types(client: TestClient) -> None:
    r = client.get("/api/sql", params={"q": EXAMPLE_SPAN},
                   headers={"Accept": "application/vnd.apache.arrow.stream"})
    table = pa.ipc.open_stream(r.content).read_all()
    assert table.schema.field("start_time").type == pa.timestamp("ns")
    assert table.column("span_id_bytes").to_pylist() == [bytes.fromhex("0000000000000006")]


def test_parquet_download(client: TestClient) -> None:
    r = client.post("/api/sql", json={"query": "SELECT * FROM spans", "format": "parquet"})
    assert r.headers["content-type"] == "application/vnd.apache.parquet"
    table = pq.read_table(io.BytesIO(r.content))
    assert table.num_rows == all_spans().num_rows and "span_attributes" in table.column_names


def test_bad_max_rows_parameter_is_a_400(client: TestClient) -> None:
    r = client.get("/api/sql", params={"q": "SELECT 1", "max_rows": "ten"})
    assert r.status_code == 400 and "max_rows must be an integer" in r.json()["error"]


def test_unknown_format_is_a_400(client: TestClient) -> None:
    r = client.get("/api/sql", params={"q": "SELECT 1", "format": "xml"})
    assert r.status_code == 400 and "unknown format" in r.json()["error"]


@pytest.mark.parametrize(("body", "message"), [
    (b'{"query": 1}', '"query"'),
    (b'{"query": "SELECT 1", "max_rows": "ten"}', "max_rows"),
    (b"{not json", "not valid JSON"),
    (b"", "no query"),
])
def test_bad_request_bodies_are_400(client: TestClient, body: bytes, message: str) -> None:
    r = client.post("/api/sql", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and message in r.json()["error"]


def test_sql_errors_are_400_with_duckdbs_message(client: TestClient) -> None:
    r = client.get("/api/sql", params={"q": "SELECT nope FROM spans"})
    assert r.status_code == 400
    assert r.json()["error"].startswith("Binder Error") and '"nope"' in r.json()["error"]


@pytest.mark.parametrize(("query", "message"), ATTACKS, ids=[q for q, _ in ATTACKS])
def test_attack_is_refused_over_http(client: TestClient, store: SegmentStore, tmp_path: Path,
                                     query: str, message: str) -> None:
    r = client.post("/api/sql", json={"query": attack(query, store, tmp_path)})
    assert r.status_code == 400 and message in r.json()["error"]
    assert client.get("/api/sql", params={"q": "SELECT count(*) > 0 FROM spans"}).json()["rows"] == [[True]]


def test_timeout_is_a_400_saying_so(store: SegmentStore) -> None:
    engine = SqlEngine(store.snapshot, timeout_s=0.3)
    with client_for(engine) as c:
        r = c.post("/api/sql", json={"query": HEAVY})
    engine.close()
    assert r.status_code == 400
    assert r.json()["timeout"] is True and "time limit" in r.json()["error"]


def test_busy_is_a_503_with_retry_after(store: SegmentStore) -> None:
    engine = SqlEngine(store.snapshot, timeout_s=1.5, max_concurrent=1)
    with client_for(engine) as c:
        heavy = threading.Thread(target=lambda: c.post("/api/sql", json={"query": HEAVY}))
        heavy.start()
        until(lambda: engine.running == 1, 30, "the heavy query holds the slot")
        r = c.get("/api/sql", params={"q": "SELECT 1"})
        heavy.join()
        after = c.get("/api/sql", params={"q": "SELECT 1"})
    engine.close()
    assert r.status_code == 503 and r.headers["retry-after"] == "1" and "retry" in r.json()["error"]
    assert after.status_code == 200
