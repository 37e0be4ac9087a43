from __future__ import annotations

import gc
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from spanlake.storage.footers import FOOTERS, FooterBudget, chunks_of
from spanlake.storage.store import open_store
from tests.storage.test_store import _ids, _spans


class Owner:
    footer: pq.FileMetaData | None = None


@pytest.fixture(scope="module")
def footer(tmp_path_factory: pytest.TempPathFactory) -> pq.FileMetaData:
    path = tmp_path_factory.mktemp("footer") / "two-row-groups.parquet"
    pq.write_table(pa.table({"a": [1, 2], "b": ["x", "y"]}), path, row_group_size=1)
    return pq.read_metadata(path)


def test_the_least_recently_used_segment_loses_its_footer_first(footer: pq.FileMetaData) -> None:
    budget = FooterBudget(max_chunks=2 * chunks_of(footer))
    first, second, third = Owner(), Owner(), Owner()
    budget.keep(first, footer)
    budget.keep(second, footer)
    budget.keep(first, footer)  # read again: now the most recent
    budget.keep(third, footer)
    assert second.footer is None
    assert first.footer is footer and third.footer is footer
    assert budget.chunks == 2 * chunks_of(footer) == 8


def test_a_segment_no_snapshot_lists_any_more_leaves_the_budget(footer: pq.FileMetaData) -> None:
    budget = FooterBudget(max_chunks=10**6)
    kept, dropped = Owner(), Owner()
    budget.keep(kept, footer)
    budget.keep(dropped, footer)
    del dropped
    gc.collect()
    assert budget.chunks == chunks_of(footer)


def test_trace_lookups_read_segments_whose_footer_was_evicted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(FOOTERS, "max_chunks", 1)  # each segment read evicts every other footer
    store = open_store(tmp_path, flush_interval_s=3600)
    batches = [_spans(traces=4, per_trace=3) for _ in range(3)]
    for batch in batches:
        store.write(batch)
        store.flush()
    segments = store.snapshot().segments
    assert len(segments) == 3
    assert sum(s.footer is not None for s in segments) == 1
    for _ in range(2):  # the second round parses every footer again
        for batch in batches:
            assert store.get_traces(_ids(batch)).num_rows == batch.num_rows
    assert sum(s.footer is not None for s in store.snapshot().segments) == 1
    store.close()
