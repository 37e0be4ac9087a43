from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from spanlake.query.app import make_app
from spanlake.storage.store import SegmentStore, StoreConfig
from spanlake.storage.traceql.engine import TraceQLEngine
from tests.query.client import TestClient
from tests.storage.traceql.traces import random_traces


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SegmentStore]:
    """The seeded traces, half flushed into segments and half in the unflushed tail."""
    s = SegmentStore(Path(tmp_path_factory.mktemp("tempo")), StoreConfig(flush_interval_s=3600))
    table = random_traces()
    half = table.num_rows // 2
    s.write(table.slice(0, half))
    s.flush()
    s.write(table.slice(half))
    yield s
    s.close()


@pytest.fixture(scope="module")
def client(store: SegmentStore) -> TestClient:
    app = make_app(store, lambda body: body, traceql=TraceQLEngine(store.reader))  # type: ignore[arg-type,return-value]
    return TestClient(app)
