"""One error path: every query API family answers errors in its own shape through query/errors.py,
and no exception reaches the server's generic handler (the TestClient would re-raise it)."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from spanlake.query import apiv3, jaeger_api, spm
from spanlake.query import sql as sql_api
from spanlake.storage.memory import MemoryStore
from spanlake.storage.sql import SqlBusy, SqlError
from tests.query.client import TestClient


class BrokenStore(MemoryStore):
    """Every read fails the way a lost disk would."""

    def get_services(self):
        raise OSError("disk on fire")

    def scan_spans(self, *args, **kwargs):
        raise OSError("disk on fire")


class Engine:
    """Stands in for the SQL engine (storage/sql.py), which has its own tests: raises what it is given."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def execute(self, query, max_rows):
        raise self.error


def _client(store=None, sql_error: Exception | None = None) -> TestClient:
    app = FastAPI()
    store = store or MemoryStore()
    app.include_router(apiv3.router(store))
    app.include_router(jaeger_api.router(store, lambda body: None))
    app.include_router(spm.router(store))
    app.include_router(sql_api.router(Engine(sql_error or SqlError("no such table: nope"))))
    return TestClient(app)


@pytest.mark.parametrize(("path", "message_of"), [
    ("/api/services", lambda body: body["errors"][0]["msg"]),
    ("/api/v3/services", lambda body: body["error"]["message"]),
    ("/api/metrics/calls?service=a", lambda body: body["errors"][0]["msg"]),
])
def test_storage_failure_is_500_in_each_familys_shape(path, message_of):
    response = _client(BrokenStore()).get(path)
    assert response.status_code == 500
    assert "disk on fire" in message_of(response.json())


@pytest.mark.parametrize(("path", "message_of"), [
    ("/api/traces/not-hex", lambda body: body["errors"][0]["msg"]),
    ("/api/v3/traces/not-hex", lambda body: body["error"]["message"]),
    ("/api/metrics/calls?service=a&step=soon", lambda body: body["errors"][0]["msg"]),
    ("/api/metrics/bogus?service=a", lambda body: body["errors"][0]["msg"]),
    ("/api/sql?q=select%201&max_rows=many", lambda body: body["error"]),
])
def test_bad_parameters_are_client_errors_in_each_familys_shape(path, message_of):
    response = _client().get(path)
    assert 400 <= response.status_code < 500
    assert message_of(response.json())


def test_sql_errors_map_to_the_sql_apis_shape():
    refused = _client(sql_error=SqlError("only SELECT is allowed")).get("/api/sql", params={"q": "drop"})
    assert refused.status_code == 400 and refused.json() == {"error": "only SELECT is allowed"}
    busy = _client(sql_error=SqlBusy("4 queries running")).get("/api/sql", params={"q": "select 1"})
    assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
    assert busy.json() == {"error": "4 queries running"}
