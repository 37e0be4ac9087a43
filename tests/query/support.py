"""Shared test setup for the query API: a MemoryStore loaded with upstream fixtures, a routers-only app."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
from fastapi import FastAPI

from spanlake.collector.formats.otlp import decode_otlp_json
from spanlake.query import apiv3, jaeger_api, spm
from spanlake.storage.attributes import attrs
from spanlake.storage.rows import spans_table
from tests.paths import FIXTURES, JAEGER_SUITE
from tests.query.client import TestClient
from tests.storage.memory import MemoryStore

MEMORY_FIXTURE = FIXTURES / "jaeger" / "memory-store" / "otel_traces_01.json"
SNAPSHOTS = FIXTURES / "jaeger" / "apiv3-http-snapshots"
EXAMPLE_TRACE = JAEGER_SUITE / "traces" / "example_trace.json"


def decode(body: bytes) -> pa.Table:
    return decode_otlp_json(body).spans


def store_with(*paths: Path) -> MemoryStore:
    store = MemoryStore()
    for path in paths:
        store.write(decode(path.read_bytes()))
    return store


def client_for(reader: MemoryStore) -> TestClient:
    app = FastAPI()
    app.include_router(jaeger_api.router(reader, decode))
    app.include_router(apiv3.router(reader))
    app.include_router(spm.router(reader))
    return TestClient(app)


def unsorted_trace_store() -> MemoryStore:
    """Trace ...07: three spans s1, s2, s3 stored in an order other than their start times."""
    store = MemoryStore()
    rows = [
        {
            "trace_id": bytes(15) + b"\x07",
            "span_id": bytes(7) + bytes([n]),
            "name": f"s{n}",
            "start_time_unix_nano": start,
            "end_time_unix_nano": start + 10,
            "resource_attributes": attrs({"service.name": "svc"}),
        }
        for n, start in [(1, 3000), (2, 1000), (3, 2000)]
    ]
    store.write(spans_table(rows))
    return store
