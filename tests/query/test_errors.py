"""One error path: every query API family answers errors in its own shape through query/errors.py,
and no exception reaches the server's generic handler (the TestClient would re-raise it)."""

from __future__ import annotations

import contextlib

import pytest
from fastapi import FastAPI

from spanlake.query import apiv3, jaeger_api, spm
from spanlake.query import sql as sql_api
from spanlake.query.limits import HOUR_NS, LimitedReader, QueryLimits
from spanlake.query.tempo import api as tempo_api
from spanlake.storage.sql import SqlBusy, SqlError
from spanlake.storage.traceql.engine import TraceQLEngine
from tests.query.client import TestClient
from tests.storage.memory import MemoryStore


class BrokenStore(MemoryStore):
    """Every read fails the way a lost disk would."""

    def get_services(self):
        raise OSError("disk on fire")

    def scan_spans(self, *args, **kwargs):
        raise OSError("disk on fire")

    def run_sql(self, *args, **kwargs):  # the TraceQL engine's way in (Tempo's API)
        raise OSError("disk on fire")

    def run_sql_newest_first(self, *args, **kwargs):  # its way in for searches with a limit
        raise OSError("disk on fire")


class Reader(MemoryStore):
    """A store the TraceQL engine can run on: its SQL finds nothing."""

    def run_sql(self, *args, **kwargs):
        raise AssertionError("not reached by the requests of these tests")

    run_sql_newest_first = run_sql


class Engine:
    """Stands in for the SQL engine (storage/sql.py), which has its own tests: raises what it is given."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def execute(self, query, max_rows, slot_held=False):
        raise self.error

    @contextlib.contextmanager
    def slot(self):
        yield


def _client(store=None, sql_error: Exception | None = None) -> TestClient:
    app = FastAPI()
    store = store or Reader()
    app.include_router(apiv3.router(store))
    app.include_router(jaeger_api.router(store, lambda body: None))
    app.include_router(spm.router(store))
    app.include_router(sql_api.router(Engine(sql_error or SqlError("no such table: nope"))))
    app.include_router(tempo_api.router(store, TraceQLEngine(store)))
    return TestClient(app)


@pytest.mark.parametrize(("path", "message_of"), [
    ("/api/services", lambda body: body["errors"][0]["msg"]),
    ("/api/v3/services", lambda body: body["error"]["message"]),
    ("/api/metrics/calls?service=a", lambda body: body["errors"][0]["msg"]),
    ("/tempo/api/search?q=%7B%7D", lambda body: body),
    ("/tempo/api/v2/search/tags", lambda body: body),
])
def test_storage_failure_is_500_in_each_familys_shape(path, message_of):
    response = _client(BrokenStore()).get(path)
    assert response.status_code == 500
    body = response.text if path.startswith("/tempo") else response.json()  # Tempo's errors are text
    assert "disk on fire" in message_of(body)


@pytest.mark.parametrize(("path", "message_of"), [
    ("/api/traces/not-hex", lambda body: body["errors"][0]["msg"]),
    ("/api/v3/traces/not-hex", lambda body: body["error"]["message"]),
    ("/api/metrics/calls?service=a&step=soon", lambda body: body["errors"][0]["msg"]),
    ("/api/metrics/bogus?service=a", lambda body: body["errors"][0]["msg"]),
    ("/api/sql?q=select%201&max_rows=many", lambda body: body["error"]),
    ("/tempo/api/traces/not-hex", lambda body: body),
    ("/tempo/api/search?q=%7B%20.a%20%3D", lambda body: body),  # "{ .a =": a TraceQL syntax error
    ("/tempo/api/search?limit=many", lambda body: body),
    ("/tempo/api/metrics/query_range", lambda body: body),  # no q
])
def test_bad_parameters_are_client_errors_in_each_familys_shape(path, message_of):
    response = _client().get(path)
    assert 400 <= response.status_code < 500
    body = response.text if path.startswith("/tempo") else response.json()
    assert message_of(body)


def test_tempo_errors_are_plain_text_with_the_traceql_position():
    client = _client()
    response = client.get("/tempo/api/search", params={"q": "{ .a = }"})
    assert response.status_code == 400 and response.headers["content-type"].startswith("text/plain")
    assert "line 1" in response.text and "col" in response.text
    missing = _client().get("/tempo/api/v2/traces/00000000000000000000000000000001")
    assert missing.status_code == 404 and "trace not found" in missing.text


def test_sql_errors_map_to_the_sql_apis_shape():
    refused = _client(sql_error=SqlError("only SELECT is allowed")).get("/api/sql", params={"q": "drop"})
    assert refused.status_code == 400 and refused.json() == {"error": "only SELECT is allowed"}
    busy = _client(sql_error=SqlBusy("4 queries running")).get("/api/sql", params={"q": "select 1"})
    assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
    assert busy.json() == {"error": "4 queries running"}


def _limited_client(max_body_bytes: int = 1024 * 1024) -> TestClient:
    reader = LimitedReader(MemoryStore(), QueryLimits(max_window_ns=HOUR_NS, max_results=10))
    app = FastAPI()
    app.include_router(apiv3.router(reader))
    app.include_router(jaeger_api.router(reader, lambda body: None))
    app.include_router(spm.router(reader))
    app.include_router(sql_api.router(Engine(SqlError("x" * 50_000)), max_body_bytes))
    return TestClient(app)


@pytest.mark.parametrize(("path", "message_of"), [
    ("/api/traces?service=a&lookback=3h", lambda body: body["errors"][0]["msg"]),
    ("/api/traces?service=a&limit=11", lambda body: body["errors"][0]["msg"]),
    ("/api/dependencies?lookback=10800000", lambda body: body["errors"][0]["msg"]),
    ("/api/metrics/calls?service=a&lookback=10800000", lambda body: body["errors"][0]["msg"]),
    ("/api/v3/traces?query.service_name=a&query.start_time_min=2024-01-01T00:00:00Z"
     "&query.start_time_max=2024-01-01T05:00:00Z", lambda body: body["error"]["message"]),
])
def test_query_limits_are_400_in_each_familys_shape(path, message_of):
    response = _limited_client().get(path)
    assert response.status_code == 400, response.text
    assert "--search-max-" in message_of(response.json())


def test_sql_body_over_its_cap_is_413_in_the_sql_apis_shape():
    response = _limited_client(max_body_bytes=100).post("/api/sql", content=b"select " + b"1" * 200,
                                                        headers={"content-type": "text/plain"})
    assert response.status_code == 413
    assert "sql_max_body_bytes" in response.json()["error"]


def test_a_long_sql_error_is_cut_in_the_sql_apis_shape():
    response = _limited_client().get("/api/sql", params={"q": "select 1"})
    assert response.status_code == 400
    assert len(response.json()["error"]) < 2100 and "more characters" in response.json()["error"]
