"""Shared test setup for the query API: a MemoryStore loaded with upstream fixtures, a routers-only app."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
from fastapi import FastAPI

from collector.formats.otlp import decode_otlp_json
from query import apiv3, jaeger_api, spm
from storage.memory import MemoryStore
from tests.paths import FIXTURES, JAEGER_SUITE
from tests.query.client import TestClient

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
