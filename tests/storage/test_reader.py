"""The reader survives compaction deleting a segment between listing it and reading it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from spanlake.collector.formats.otlp import otlp_request_to_spans
from spanlake.storage.catalog import Snapshot
from spanlake.storage.reader import Reader
from spanlake.storage.store import SegmentStore, open_store
from tests.otlp_data import make_request

SQL = "SELECT count(*) AS n, count(DISTINCT trace_id) AS traces FROM {spans}"
LATEST = ("SELECT trace_id, max(start_time_unix_nano) AS latest FROM {spans} GROUP BY trace_id "
          "ORDER BY latest DESC, trace_id LIMIT 5")


@pytest.fixture
def stale(tmp_path: Path) -> Iterator[tuple[SegmentStore, Reader, pa.Table]]:
    """A store whose four segments were merged and deleted, and a reader whose first snapshot
    still lists them (a query that listed the store just before compaction ran)."""
    store = open_store(tmp_path, flush_interval_s=3600)
    written = []
    for _ in range(4):
        spans = otlp_request_to_spans(make_request(10, 3)).spans
        written.append(spans)
        store.write(spans)
        store.flush()
    before = store.snapshot()
    store.compact()
    store.compact()  # the second run deletes the inputs the first one replaced (no grace locally)
    assert not any(Path(s.path).exists() for s in before.segments)
    snapshots: list[Snapshot] = [before]

    def snapshot() -> Snapshot:
        return snapshots.pop() if snapshots else store.snapshot()

    yield store, Reader(snapshot), pa.concat_tables(written)
    store.close()


def test_a_search_retries_on_a_fresh_snapshot(stale: tuple[SegmentStore, Reader, pa.Table]) -> None:
    _, reader, written = stale
    row = reader.run_sql(SQL, {}).to_pylist()[0]
    assert row == {"n": written.num_rows, "traces": 40}


def test_a_newest_first_search_retries_on_a_fresh_snapshot(
        stale: tuple[SegmentStore, Reader, pa.Table]) -> None:
    store, reader, _ = stale
    got: dict[bytes, int] = {}
    for table, _bound in reader.run_sql_newest_first(LATEST, {}, 0, 2**62):
        for row in table.to_pylist():
            got[row["trace_id"]] = max(row["latest"], got.get(row["trace_id"], 0))
    expected = store.reader.run_sql(LATEST, {}).to_pylist()
    assert sorted(got.items(), key=lambda kv: (-kv[1], kv[0]))[:5] == [
        (r["trace_id"], r["latest"]) for r in expected]


def test_a_trace_lookup_retries_on_a_fresh_snapshot(stale: tuple[SegmentStore, Reader, pa.Table]) -> None:
    _, reader, written = stale
    first = written.column("trace_id")[0].as_py()
    assert reader.get_traces([first]).num_rows == 3


def test_a_span_scan_retries_on_a_fresh_snapshot(stale: tuple[SegmentStore, Reader, pa.Table]) -> None:
    _, reader, written = stale
    assert reader.scan_spans(["span_id"], 0, 2**62).num_rows == written.num_rows
