"""Lifecycle: compaction merges a partition's small segments; retention drops old partitions.

Compaction writes the merged segment with ``replaces`` in its footer and commits it by rename; from
that moment readers skip the inputs, which are then deleted. A crash in between leaves inputs that
readers already ignore and that the next compaction deletes. Merged segments are re-sorted by trace
ID, so they compress better (larger dictionaries, longer runs) and trace lookups touch fewer files.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import shutil
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from spanlake.storage.catalog import Catalog
from spanlake.storage.segments import (
    HOUR_GLOBS,
    HOUR_NS,
    SPANS_DIR,
    Segment,
    delete_segment,
    prepare_segment,
    read_segment,
    tenant_of_partition,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CompactionResult:
    inputs: int
    outputs: int
    spans: int


def compact(root: Path, catalog: Catalog, max_output_spans: int = 1_000_000, min_inputs: int = 2,
            settled_before_ns: int | None = None,
            progress: Callable[[str], None] = log.info) -> CompactionResult:
    """Merge the segments of each partition into as few as possible of at most ``max_output_spans``.

    With ``settled_before_ns``, only partitions whose hour ended before it are touched: the current
    hour still receives segments, and compacting it over and over would rewrite the same spans.
    Must not run beside a flush of the same writer: ``SegmentStore.compact`` takes its flush lock.
    """
    _delete_replaced(root, catalog)
    inputs = outputs = spans = 0
    for partition, segments in sorted(_by_partition(root, catalog.segments()).items()):
        if settled_before_ns is not None and _partition_end_ns(partition) > settled_before_ns:
            continue
        for group in _groups(segments, max_output_spans):
            if len(group) < min_inputs:
                continue
            merged = pa.concat_tables([read_segment(s.path) for s in group])
            replaces = [str(s.path.relative_to(root)) for s in group]
            name = f"c{secrets.token_hex(6)}"
            prepare_segment(root, partition, name, merged, _merged_meta(group, replaces)).commit()
            catalog.invalidate()
            for s in group:
                delete_segment(s.path)
            inputs, outputs, spans = inputs + len(group), outputs + 1, spans + merged.num_rows
            progress(f"compacted {len(group)} segments ({merged.num_rows} spans) in {partition}")
    catalog.invalidate()
    return CompactionResult(inputs, outputs, spans)


def drop_older_than(root: Path, cutoff_ns: int, catalog: Catalog, tenant: str | None = None) -> int:
    """Delete every hour partition (of ``tenant``, or of every tenant) that ends before ``cutoff_ns``;
    returns how many."""
    dropped = 0
    base = root / SPANS_DIR
    hour_dirs = sorted(d for pattern in HOUR_GLOBS for d in base.glob(pattern))
    for hour_dir in hour_dirs:
        if tenant is not None and tenant_of_partition(hour_dir) != tenant:
            continue
        if _partition_end_ns(f"{hour_dir.parent.name}/{hour_dir.name}") <= cutoff_ns:
            shutil.rmtree(hour_dir)
            dropped += 1
    for date_dir in [*base.glob("date=*"), *base.glob("tenant=*/date=*")]:
        if not any(date_dir.iterdir()):
            date_dir.rmdir()
    catalog.invalidate()
    return dropped


def _partition_end_ns(partition: str) -> int:
    """End of the hour a ``[tenant=T/]date=YYYY-MM-DD/hour=HH`` partition holds, in ns since the epoch."""
    date_part, hour_part = partition.split("/")[-2:]
    day = dt.datetime.strptime(date_part.removeprefix("date="), "%Y-%m-%d").replace(tzinfo=dt.UTC)
    return int(day.timestamp()) * 10**9 + (int(hour_part.removeprefix("hour=")) + 1) * HOUR_NS


def _by_partition(root: Path, segments: list[Segment]) -> dict[str, list[Segment]]:
    groups: dict[str, list[Segment]] = defaultdict(list)
    for s in segments:
        groups[str(s.path.parent.relative_to(root / SPANS_DIR))].append(s)
    return groups


def _groups(segments: list[Segment], max_spans: int) -> list[list[Segment]]:
    """Consecutive runs of small segments whose total stays within ``max_spans``."""
    groups: list[list[Segment]] = [[]]
    total = 0
    for s in sorted(segments, key=lambda s: s.path.name):
        if s.num_spans >= max_spans:
            continue  # already full size
        if total + s.num_spans > max_spans and groups[-1]:
            groups.append([])
            total = 0
        groups[-1].append(s)
        total += s.num_spans
    return [g for g in groups if g]


def _merged_meta(group: list[Segment], replaces: list[str]) -> dict[str, object]:
    wal: dict[str, int] = {}
    for s in group:  # keep every writer's WAL position: crash recovery reads it (store.py)
        for writer, seq in s.meta.get("wal_seq", {}).items():
            wal[writer] = max(wal.get(writer, -1), int(seq))
    return {"writer": "compactor", "wal_seq": wal, "replaces": replaces}


def _delete_replaced(root: Path, catalog: Catalog) -> None:
    """Finish a compaction that crashed after its commit: delete inputs that are already replaced."""
    for s in catalog.segments():
        for rel in s.meta.get("replaces", []):
            if (root / rel).exists():
                delete_segment(root / rel)
