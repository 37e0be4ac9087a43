"""Segment-store behaviours beyond the reader contract: durability, segments, lifecycle, backpressure."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from spanlake.collector.formats.otlp import otlp_request_to_spans
from spanlake.storage import compaction
from spanlake.storage.api import StoreOverloaded
from spanlake.storage.location import Location, local_location
from spanlake.storage.segments import HOUR_NS
from spanlake.storage.segments import list_segment_paths as _list_segment_paths
from spanlake.storage.store import SegmentStore, StoreConfig, open_store
from tests.otlp_data import make_request


def list_segment_paths(directory: Path) -> list[Path]:
    return [Path(p) for p in _list_segment_paths(local_location(directory))]


def _crash(store: SegmentStore) -> None:
    """What kill -9 leaves: no flush, no clean close, and the kernel drops the WAL directory lock."""
    store._wal.close()  # type: ignore[union-attr]
    store._wal_lock.release()  # type: ignore[union-attr]


def _spans(traces: int = 5, per_trace: int = 4, start_ns: int | None = None) -> pa.Table:
    return otlp_request_to_spans(make_request(traces, per_trace, start_ns=start_ns)).spans


def _ids(table: pa.Table) -> list[bytes]:
    return list(dict.fromkeys(table.column("trace_id").to_pylist()))


def test_spans_are_readable_before_any_flush(tmp_path: Path) -> None:
    store = open_store(tmp_path, flush_interval_s=3600)
    spans = _spans()
    store.write(spans)
    assert store.get_traces(_ids(spans)).num_rows == spans.num_rows
    assert not list_segment_paths(tmp_path)
    store.close()


def test_flush_writes_sorted_zstd_segments_with_a_description(tmp_path: Path) -> None:
    store = open_store(tmp_path, flush_interval_s=3600)
    spans = _spans(20, 3)
    store.write(spans)
    store.flush()
    (path,) = list_segment_paths(tmp_path)
    meta = pq.read_metadata(path)
    assert meta.row_group(0).column(0).compression == "ZSTD"
    ids = pq.read_table(path, columns=["trace_id"]).column("trace_id").to_pylist()
    assert ids == sorted(ids)
    assert b"spanlake" in meta.metadata
    assert path.with_suffix(".tids").stat().st_size == 16 * 20
    store.close()


def test_spans_of_different_hours_go_to_their_own_partitions(tmp_path: Path) -> None:
    store = open_store(tmp_path, flush_interval_s=3600)
    now = time.time_ns()
    store.write(_spans(start_ns=now - 3 * HOUR_NS))
    store.write(_spans(start_ns=now))
    store.flush()
    partitions = {p.parent.relative_to(tmp_path / "spans") for p in list_segment_paths(tmp_path)}
    assert len(partitions) == 2
    store.close()


def test_reopening_replays_the_wal_exactly_once(tmp_path: Path) -> None:
    store = open_store(tmp_path, flush_interval_s=3600)
    spans = _spans()
    store.write(spans)
    _crash(store)
    reopened = open_store(tmp_path, flush_interval_s=3600)
    assert reopened.get_traces(_ids(spans)).num_rows == spans.num_rows
    reopened.close()


def test_a_torn_wal_record_is_dropped_not_fatal(tmp_path: Path) -> None:
    store = open_store(tmp_path, flush_interval_s=3600)
    good = _spans()
    store.write(good)
    _crash(store)
    (wal_file,) = list(tmp_path.glob("wal/*/*.wal"))
    with open(wal_file, "ab") as f:
        f.write(b"\x10\x00\x00\x00garbage")  # a crash in the middle of an append
    reopened = open_store(tmp_path, flush_interval_s=3600)
    assert reopened.get_traces(_ids(good)).num_rows == good.num_rows
    reopened.close()


def test_write_beyond_the_buffer_limit_is_refused(tmp_path: Path) -> None:
    store = SegmentStore(tmp_path, StoreConfig(flush_interval_s=3600, max_buffered_spans=30))
    store.write(_spans(5, 4))
    with pytest.raises(StoreOverloaded):
        store.write(_spans(5, 4))
    store.close()


def test_compaction_merges_segments_and_keeps_every_span(tmp_path: Path) -> None:
    store = open_store(tmp_path, flush_interval_s=3600)
    written = []
    for _ in range(4):
        spans = _spans(10, 3)
        written.append(spans)
        store.write(spans)
        store.flush()
    assert len(list_segment_paths(tmp_path)) == 4
    result = store.compact()
    assert (result.inputs, result.outputs, result.spans) == (4, 1, 120)
    assert len(list_segment_paths(tmp_path)) == 1
    for spans in written:
        assert store.get_traces(_ids(spans)).num_rows == spans.num_rows
    store.close()
    assert open_store(tmp_path).get_traces(_ids(written[0])).num_rows == 30


def test_a_flush_goes_on_between_the_merges_of_a_long_compaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(tmp_path, flush_interval_s=3600)
    for _ in range(6):
        store.write(_spans(10, 3))
        store.flush()
    read = compaction.read_segment

    def read_slowly(loc: Location, path: str) -> pa.Table:  # a merge of two segments takes >= 0.4 s
        time.sleep(0.2)
        return read(loc, path)

    monkeypatch.setattr(compaction, "read_segment", read_slowly)
    late = _spans(10, 3)
    store.write(late)
    compacting = threading.Thread(target=store.compact, kwargs={"max_output_spans": 60})
    compacting.start()
    time.sleep(0.3)  # inside the first of three merges
    store.flush()  # waits for that merge, not for all three
    flushed_while_compacting = compacting.is_alive()
    compacting.join()
    assert flushed_while_compacting
    assert store.get_traces(_ids(late)).num_rows == late.num_rows
    store.close()


def test_retention_drops_old_hour_partitions(tmp_path: Path) -> None:
    store = open_store(tmp_path, flush_interval_s=3600)
    now = time.time_ns()
    old, new = _spans(start_ns=now - 50 * HOUR_NS), _spans(start_ns=now)
    store.write(old)
    store.write(new)
    store.flush()
    assert store.drop_older_than(now - 24 * HOUR_NS) == 1
    assert store.get_traces(_ids(old)).num_rows == 0
    assert store.get_traces(_ids(new)).num_rows == new.num_rows
    store.close()


def test_plain_duckdb_reads_the_store_without_spanlake(tmp_path: Path) -> None:
    store = open_store(tmp_path, flush_interval_s=3600)
    store.write(_spans(7, 3))
    store.close()
    glob = str(tmp_path / "spans" / "*" / "*" / "*" / "*.parquet")
    count = duckdb.sql(f"SELECT count(*) FROM read_parquet('{glob}', hive_partitioning = true)").fetchall()
    assert count == [(21,)]


def test_runs_of_tiny_writes_are_merged_in_the_tail(tmp_path: Path) -> None:
    store = open_store(tmp_path, flush_interval_s=3600)
    one_span = _spans(1, 1)
    for _ in range(200):
        store.write(one_span)
    tail = store.snapshot().tail
    assert tail.num_rows == 200
    assert tail.column("trace_id").num_chunks < 20
    store.close()


def test_a_large_flush_is_written_in_segments_of_at_most_segment_max_spans(tmp_path: Path) -> None:
    store = SegmentStore(tmp_path, StoreConfig(flush_interval_s=3600, segment_max_spans=25))
    spans = _spans(20, 4)  # 80 spans: the background flush may run, so flush what is left too
    store.write(spans)
    store.flush()
    sizes = sorted(pq.read_metadata(p).num_rows for p in list_segment_paths(tmp_path))
    assert sum(sizes) == 80 and max(sizes) <= 25
    assert store.get_traces(_ids(spans)).num_rows == 80
    store.close()
