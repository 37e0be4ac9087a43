"""The TraceQL engine on an S3 store (a real SeaweedFS): the same answers as the oracle, the tenant's
objects only, and segment pruning still deciding which objects DuckDB is handed.

DuckDB cannot reach S3 here (its httpfs extension is a download at run time), so the reader gives it
pyarrow datasets of the segments; these tests see what went into those datasets.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from spanlake.query.traceql.parser import parse
from spanlake.storage import reader as reader_module
from spanlake.storage.api import TraceQuery
from spanlake.storage.catalog import Snapshot
from spanlake.storage.location import Location, StorageUnavailable, open_location, s3_filesystem
from spanlake.storage.reader import Reader
from spanlake.storage.schema import SPAN_SCHEMA
from spanlake.storage.segments import Segment
from spanlake.storage.store import SegmentStore, StoreConfig
from spanlake.storage.traceql.engine import TraceQLEngine
from tests.server import free_port
from tests.storage.traceql.test_corpus import CORPUS, HI, LO, check
from tests.storage.traceql.traces import random_traces


@pytest.fixture
def spans() -> pa.Table:
    return random_traces()


@pytest.fixture
def store(tmp_path: Path, bucket: str, spans: pa.Table) -> Iterator[SegmentStore]:
    """Three segments in the bucket and an unflushed tail, like the corpus test's local store."""
    store = SegmentStore(tmp_path, StoreConfig(flush_interval_s=3600),
                         storage=open_location(f"s3://{bucket}/store"))
    quarter = spans.num_rows // 4
    for n in range(4):
        store.write(spans.slice(n * quarter, quarter if n < 3 else None))
        if n < 3:
            store.flush()
    assert not store.loc.is_local and len(store.snapshot().segments) == 3
    yield store
    store.close()


@pytest.fixture
def handed(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The segment paths of every dataset the reader hands DuckDB."""
    seen: list[list[str]] = []
    real = reader_module.segments_dataset

    def spy(segments: list[Segment]) -> object:
        seen.append([s.path for s in segments])
        return real(segments)

    monkeypatch.setattr(reader_module, "segments_dataset", spy)
    return seen


def test_corpus_queries_on_s3_match_the_oracle(store: SegmentStore, spans: pa.Table,
                                               handed: list[list[str]]) -> None:
    engine = TraceQLEngine(store.reader)
    found = sum(check(engine, spans, text) for text in CORPUS[::10])
    assert found > 0 and handed  # answers came out, and the segments were read from the bucket


def test_segment_pruning_decides_which_objects_duckdb_reads(store: SegmentStore, spans: pa.Table,
                                                            handed: list[list[str]]) -> None:
    engine = TraceQLEngine(store.reader)
    segments = store.snapshot().segments
    check(engine, spans, '{ span.http.method = "PATCH" && duration > 1s }')
    assert handed == []  # no segment can match: only the tail was searched
    with_db = {s.path for s in segments if "db" in s.meta["services"]}
    assert 0 < len(with_db)
    check(engine, spans, '{ resource.service.name = "db" }')
    assert handed and all(set(paths) <= with_db for paths in handed)


def test_a_jaeger_search_on_s3_runs_through_the_engine(store: SegmentStore, spans: pa.Table) -> None:
    query = TraceQuery(service_name="db", start_time_min_ns=LO, start_time_max_ns=HI, search_depth=1000)
    expected = {bytes(t) for t, s in zip(spans.column("trace_id").to_pylist(),
                                          spans.column("service_name").to_pylist(), strict=True)
                if s == "db"}
    assert set(store.find_trace_ids(query)) == expected


def test_a_tenant_searches_its_own_objects_only(tmp_path: Path, bucket: str, spans: pa.Table) -> None:
    store = SegmentStore(tmp_path, StoreConfig(flush_interval_s=3600),
                         storage=open_location(f"s3://{bucket}/store"))
    store.for_tenant("team-a").write(spans)
    store.flush()
    query = parse("{ }")
    team_a = TraceQLEngine(store.for_tenant("team-a").reader).search(query, LO, HI, 10_000)
    team_b = TraceQLEngine(store.for_tenant("team-b").reader).search(query, LO, HI, 10_000)
    assert {t.trace_id for t in team_a} == set(spans.column("trace_id").to_pylist())
    assert team_b == []
    store.close()


def test_a_store_gone_during_a_search_is_storage_unavailable(store: SegmentStore) -> None:
    """Listed while the store was up, read after it went away: the search says the store is
    unavailable (a 503 in every API), not an internal error."""
    dead = Location(s3_filesystem(f"http://127.0.0.1:{free_port()}", "us-east-1"), store.loc.root,
                    store.loc.uri)
    listed = store.snapshot().segments
    for seg in listed:  # the sidecars were read while the store was up
        seg.trace_ids()
        seg.bloom()
    gone = [dataclasses.replace(seg, loc=dead) for seg in listed]
    reader = Reader(lambda: Snapshot(gone, SPAN_SCHEMA.empty_table()))
    with pytest.raises(StorageUnavailable, match="cannot read the span store"):
        TraceQLEngine(reader).search(parse("{ }"), LO, HI, 20)
    with pytest.raises(StorageUnavailable):
        reader.find_trace_ids(TraceQuery(service_name="db", start_time_min_ns=LO, start_time_max_ns=HI))
