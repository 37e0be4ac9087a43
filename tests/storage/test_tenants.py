"""Tenants in the segment store: one prefix each on disk, and every read bound to one tenant."""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from spanlake.storage import wal as wal_module
from spanlake.storage.api import DEFAULT_TENANT, InvalidTenant, StoreUnavailable, TraceQuery
from spanlake.storage.segments import HOUR_NS
from spanlake.storage.sql import SqlEngine, SqlError
from spanlake.storage.store import SegmentStore, StoreConfig
from tests.storage.spans import BASE_NS, span, spans_table
from tests.storage.test_store import _crash, list_segment_paths


def _trace(service: str, trace: int = 7) -> object:
    return spans_table([span(trace, 1, service, "root"), span(trace, 2, service, "child", parent=1)])


@pytest.fixture
def store(tmp_path: Path):
    s = SegmentStore(tmp_path, StoreConfig(flush_interval_s=3600))
    yield s
    s.close()


def _fill(store: SegmentStore) -> None:
    store.for_tenant("team-a").write(_trace("svc-a"))  # the same trace ID in both tenants
    store.for_tenant("team-b").write(_trace("svc-b"))


@pytest.mark.parametrize("flushed", [False, True], ids=["tail", "segments"])
def test_each_tenant_reads_only_its_own_spans(store: SegmentStore, flushed: bool) -> None:
    _fill(store)
    if flushed:
        store.flush()
    a, b = store.for_tenant("team-a"), store.for_tenant("team-b")
    assert set(a.get_traces([(7).to_bytes(16, "big")]).column("service_name").to_pylist()) == {"svc-a"}
    assert set(b.get_traces([(7).to_bytes(16, "big")]).column("service_name").to_pylist()) == {"svc-b"}
    assert a.get_services() == ["svc-a"] and b.get_services() == ["svc-b"]
    assert store.for_tenant("team-c").get_services() == []
    assert store.get_services() == []  # the default tenant sees neither
    query = TraceQuery(start_time_min_ns=BASE_NS - HOUR_NS, start_time_max_ns=BASE_NS + HOUR_NS)
    assert len(a.find_trace_ids(query)) == 1
    assert [o.name for o in b.get_operations("svc-a")] == []
    scanned = a.scan_spans(["service_name"], BASE_NS - HOUR_NS, BASE_NS + HOUR_NS)
    assert set(scanned.column("service_name").to_pylist()) == {"svc-a"}


def test_segments_live_under_the_tenant_prefix(store: SegmentStore, tmp_path: Path) -> None:
    _fill(store)
    store.flush()
    tops = {p.relative_to(tmp_path / "spans").parts[0] for p in list_segment_paths(tmp_path)}
    assert tops == {"tenant=team-a", "tenant=team-b"}
    assert store.tenants() == ["team-a", "team-b"]


def test_tenant_survives_a_wal_replay(tmp_path: Path) -> None:
    first = SegmentStore(tmp_path, StoreConfig(flush_interval_s=3600))
    _fill(first)
    first._flusher = None  # no background flush of the tail before the "crash"
    first._closed.set()
    _crash(first)
    again = SegmentStore(tmp_path, StoreConfig(flush_interval_s=3600))
    try:
        assert again.for_tenant("team-a").get_services() == ["svc-a"]
        assert again.for_tenant("team-b").get_services() == ["svc-b"]
        tops = {p.relative_to(tmp_path / "spans").parts[0] for p in list_segment_paths(tmp_path)}
        assert tops == {"tenant=team-a", "tenant=team-b"}
    finally:
        again.close()


def test_sql_over_a_tenant_snapshot_sees_only_that_tenant(store: SegmentStore) -> None:
    _fill(store)
    store.flush()
    store.for_tenant("team-a").write(_trace("svc-a-tail", trace=8))
    engine = SqlEngine(lambda: store.snapshot("team-a"))
    try:
        rows = engine.execute("SELECT DISTINCT service_name FROM spans ORDER BY 1").table.to_pylist()
        assert rows == [{"service_name": "svc-a"}, {"service_name": "svc-a-tail"}]
    finally:
        engine.close()


def test_sql_of_one_tenant_cannot_open_another_tenants_files(store: SegmentStore) -> None:
    _fill(store)
    store.flush()
    (theirs,) = store.snapshot("team-b").segments
    engine = SqlEngine(lambda: store.snapshot("team-a"))
    try:
        for query in (f"SELECT * FROM read_parquet('{theirs.path}')",
                      f"SELECT * FROM glob('{os.path.dirname(theirs.path)}/*')",
                      f"SELECT * FROM read_blob('{theirs.path.removesuffix('.parquet')}.tids')"):
            with pytest.raises(SqlError, match="file system operations are disabled by configuration"):
                engine.execute(query)
    finally:
        engine.close()


def test_retention_can_drop_one_tenant_only(store: SegmentStore) -> None:
    _fill(store)
    store.flush()
    assert store.drop_older_than(time.time_ns(), tenant="team-a") == 1
    assert store.for_tenant("team-a").get_services() == []
    assert store.for_tenant("team-b").get_services() == ["svc-b"]


def test_segments_of_the_pre_tenant_layout_belong_to_the_default_tenant(store: SegmentStore,
                                                                        tmp_path: Path) -> None:
    _fill(store)
    store.flush()
    (old,) = [p for p in list_segment_paths(tmp_path) if "team-a" in str(p)]
    legacy = tmp_path / "spans" / old.parent.parent.name / old.parent.name
    legacy.mkdir(parents=True)
    pq.write_table(pq.read_table(old), legacy / old.name)  # footer metadata kept
    store.catalog.invalidate()
    assert store.for_tenant(DEFAULT_TENANT).get_services() == ["svc-a"]


@pytest.mark.parametrize("name", ["", "..", ".", "a/b", "x" * 65, "tenant=a", "ä"])
def test_unsafe_tenant_names_are_refused(store: SegmentStore, name: str) -> None:
    with pytest.raises(InvalidTenant):
        store.for_tenant(name)


def test_a_rolled_back_append_keeps_every_other_records_tenant(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    first = SegmentStore(tmp_path, StoreConfig(flush_interval_s=3600))
    first.for_tenant("team-a").write(_trace("svc-a"))
    real_write = os.write

    def half_then_enospc(fd: int, data: bytes) -> int:
        real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(wal_module.os, "write", half_then_enospc)  # the OS-call boundary
    with pytest.raises(StoreUnavailable):  # retryable; nothing of it counts
        first.for_tenant("team-c").write(_trace("svc-c"))
    monkeypatch.undo()
    first.for_tenant("team-b").write(_trace("svc-b"))
    first._flusher = None  # no background flush of the tail before the "crash"
    first._closed.set()
    _crash(first)
    again = SegmentStore(tmp_path, StoreConfig(flush_interval_s=3600))
    try:
        assert again.for_tenant("team-a").get_services() == ["svc-a"]
        assert again.for_tenant("team-b").get_services() == ["svc-b"]
        assert again.for_tenant("team-c").get_services() == []
    finally:
        again.close()
