"""An unreachable object store: every query API answers a retryable 503 that says so, never a 500.

The store here is a pyarrow S3 filesystem pointed at a closed loopback port (nothing listens), which
is what a query node sees while its bucket's endpoint is down.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from spanlake.query import app as query_app
from spanlake.query import sql as sql_api
from spanlake.storage.location import Location, StorageUnavailable, s3_filesystem
from spanlake.storage.sql import SqlEngine
from spanlake.storage.store import SegmentStore, StoreConfig
from spanlake.storage.traceql.engine import TraceQLEngine
from tests.query.client import TestClient
from tests.query.support import decode
from tests.server import free_port


@pytest.fixture
def store(tmp_path: Path) -> SegmentStore:
    dead = Location(s3_filesystem(f"http://127.0.0.1:{free_port()}", "us-east-1"), "bucket/prefix",
                    "s3://bucket/prefix")
    return SegmentStore(tmp_path, StoreConfig(), writable=False, storage=dead)


def test_the_reader_raises_storage_unavailable_naming_the_store(store: SegmentStore) -> None:
    with pytest.raises(StorageUnavailable, match="s3://bucket/prefix"):
        store.get_services()


@pytest.mark.parametrize("path", ["/api/services", "/api/traces/0123456789abcdef0123456789abcdef",
                                  "/api/v3/services", "/api/v3/traces/0123456789abcdef0123456789abcdef",
                                  "/zipkin/api/v2/services", "/api/metrics/calls?service=a",
                                  "/api/traces?service=a", "/zipkin/api/v2/traces?serviceName=a",
                                  "/tempo/api/search?q={}",
                                  "/tempo/api/v2/traces/0123456789abcdef0123456789abcdef",
                                  "/tempo/api/v2/search/tag/resource.service.name/values",
                                  "/tempo/api/metrics/query_range?q={} | rate()"])
def test_query_apis_answer_503_naming_the_unavailable_store(store: SegmentStore, path: str) -> None:
    client = TestClient(query_app.make_app(store, decode, traceql=TraceQLEngine(store.reader)))
    reply = client.get(path)
    assert reply.status_code == 503, reply.text
    assert reply.headers["Retry-After"] == "5"
    assert "the span store is unavailable" in reply.text and "s3://bucket/prefix" in reply.text


def test_sql_answers_503_naming_the_unavailable_store(store: SegmentStore) -> None:
    engine = SqlEngine(store.snapshot)
    client = TestClient(query_app.make_app(store, decode, extra_routers=[sql_api.router(engine)]))
    reply = client.get("/api/sql", params={"q": "SELECT count(*) FROM spans"})
    assert reply.status_code == 503
    assert "the span store is unavailable" in reply.json()["error"]
    engine.close()
