"""Query limits (query/limits.py): windows, result counts, int64 bounds, and big traces cut to their
first spans with a PARTIAL warning, on the segment store, whose reader stops reading a trace early."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi import FastAPI

from spanlake.query import jaeger_api
from spanlake.query.limits import HOUR_NS, LimitedReader, QueryLimitExceeded, QueryLimits, partial_traces
from spanlake.query.params import ParamError
from spanlake.storage.api import TraceQuery
from spanlake.storage.store import SegmentStore, StoreConfig
from tests.query.client import TestClient
from tests.query.support import decode
from tests.storage.spans import BASE_NS, big_trace, tid

BIG = tid(0xB16)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SegmentStore]:
    s = SegmentStore(Path(tmp_path_factory.mktemp("limits")), StoreConfig(flush_interval_s=3600,
                                                                          segment_max_spans=1000))
    # 5,000 spans in five segments, the latest half still in the tail.
    ids = np.arange(1, 5001, dtype=np.uint64)
    s.write(big_trace(BIG, ids[:2500], BASE_NS))
    s.flush()
    s.write(big_trace(BIG, ids[2500:], BASE_NS + 2500 * 1000))
    yield s
    s.close()


def test_a_big_trace_is_cut_to_its_first_spans_and_marked_partial(store: SegmentStore) -> None:
    reader = LimitedReader(store, QueryLimits(max_spans_per_trace=300))
    table = reader.get_traces([BIG])
    assert table.num_rows == 300
    starts = sorted(table.column("start_time_unix_nano").to_pylist())
    assert starts == [BASE_NS + i * 1000 for i in range(300)]
    # Read: the tail (2,500, in memory) and the earliest segment (1,000); not the other 1,500.
    assert partial_traces(table) == {BIG.hex(): 3500}


def test_a_small_trace_is_whole_and_unmarked(store: SegmentStore) -> None:
    table = LimitedReader(store, QueryLimits(max_spans_per_trace=10_000)).get_traces([BIG])
    assert table.num_rows == 5000 and partial_traces(table) == {}


def test_the_byte_limit_cuts_too(store: SegmentStore) -> None:
    whole = store.get_traces([BIG])
    table = LimitedReader(store, QueryLimits(max_bytes_per_trace=whole.nbytes // 10)).get_traces([BIG])
    assert 0 < table.num_rows <= 501 and partial_traces(table)


def test_the_jaeger_api_says_partial_in_the_trace_warnings(store: SegmentStore) -> None:
    app = FastAPI()
    app.include_router(jaeger_api.router(LimitedReader(store, QueryLimits(max_spans_per_trace=50)), decode))
    reply = TestClient(app).get(f"/api/traces/{BIG.hex()}")
    (trace,) = reply.json()["data"]
    assert len(trace["spans"]) == 50
    assert trace["warnings"] and trace["warnings"][0].startswith("PARTIAL")


@pytest.mark.parametrize("query", [
    TraceQuery(start_time_min_ns=0, start_time_max_ns=100 * HOUR_NS),
    TraceQuery(search_depth=101),
    TraceQuery(start_time_min_ns=-(2**64), start_time_max_ns=0),
    TraceQuery(duration_min_ns=2**70),
])
def test_searches_over_the_limits_are_refused(store: SegmentStore, query: TraceQuery) -> None:
    reader = LimitedReader(store, QueryLimits(max_window_ns=48 * HOUR_NS, max_results=100))
    with pytest.raises((ParamError, QueryLimitExceeded)):
        reader.find_trace_ids(query)


def test_scans_and_dependencies_over_the_window_are_refused(store: SegmentStore) -> None:
    reader = LimitedReader(store, QueryLimits(max_window_ns=HOUR_NS))
    with pytest.raises(QueryLimitExceeded, match="search-max-window-hours"):
        reader.get_dependencies(BASE_NS, 2 * HOUR_NS)
    with pytest.raises(QueryLimitExceeded):
        reader.scan_spans(["name"], 0, 2**63 - 1)
    assert reader.get_dependencies(BASE_NS, HOUR_NS) == []
