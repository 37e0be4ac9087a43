"""Lifecycle: compaction merges a partition's small segments; retention drops old partitions.

Compaction writes the merged segment with ``replaces`` in its footer; from the moment it is listed,
readers skip the inputs. The inputs are deleted only ``grace_s`` later (by a later run): a query
that listed the store just before the merge still finds them, so it neither loses a span nor sees
one twice. A crash in between leaves inputs that readers already ignore and that a later run
deletes. Merged segments are re-sorted by trace ID, so they compress better (larger dictionaries,
longer runs) and trace lookups touch fewer files.

One compactor at a time (``storage/lease.py``): the caller passes ``still_leader``, checked before
every write and delete. As a second line of defence a merged segment's name is a hash of its
inputs, so two compactors that merged the same inputs wrote the same object, not two copies.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import posixpath
import time
from collections import defaultdict
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.fs as pafs

from spanlake.storage.catalog import Catalog
from spanlake.storage.location import Location, StorageUnavailable
from spanlake.storage.segments import (
    HOUR_NS,
    SPANS_DIR,
    Segment,
    delete_segment,
    list_segment_paths,
    read_segment,
    tenant_of_partition,
    write_segment,
)

log = logging.getLogger(__name__)

# Spans per merged segment. Searches with a limit read segments newest first and stop when the
# answer is settled (storage/reader.py): smaller segments let them stop after fewer spans. At 10M
# spans, 1M-span segments made a one-attribute search read ~1M spans; 250k about a third of that.
# Trace lookups are unaffected (in-memory trace-ID sidecars pick the segment).
MERGED_SEGMENT_SPANS = 250_000


@dataclass(frozen=True)
class CompactionResult:
    inputs: int
    outputs: int
    spans: int


class LostLeadership(Exception):
    """The compactor lease was lost mid-run: stop before writing or deleting anything more."""


def compact(loc: Location, catalog: Catalog, max_output_spans: int = MERGED_SEGMENT_SPANS,
            min_inputs: int = 2, settled_before_ns: int | None = None, grace_s: float = 0.0,
            still_leader: Callable[[], bool] = lambda: True, holder: str = "compactor",
            progress: Callable[[str], None] = log.info,
            exclusive: Callable[[], AbstractContextManager[object]] = nullcontext) -> CompactionResult:
    """Merge the segments of each partition into as few as possible of at most ``max_output_spans``.

    With ``settled_before_ns``, only partitions whose hour ended before it are touched: the current
    hour still receives segments, and compacting it over and over would rewrite the same spans.
    Each merge runs inside ``exclusive()``: ``SegmentStore.compact`` passes its flush lock, so a merge
    never runs beside a flush of the same writer, and flushes go on between merges. (Held for the
    whole run, the lock stopped flushes for minutes at 100M spans: the write buffer filled and
    senders were refused until they gave up.)
    """
    with exclusive():
        _delete_replaced(loc, catalog, grace_s, still_leader)
    inputs = outputs = spans = 0
    for partition, segments in sorted(_by_partition(loc, catalog.segments()).items()):
        if settled_before_ns is not None and _partition_end_ns(partition) > settled_before_ns:
            continue
        for group in _groups(segments, max_output_spans):
            if len(group) < min_inputs:
                continue
            with exclusive():
                merged_spans = _merge(loc, catalog, partition, group, grace_s, still_leader, holder)
            inputs, outputs, spans = inputs + len(group), outputs + 1, spans + merged_spans
            progress(f"compacted {len(group)} segments ({merged_spans} spans) in {partition}")
    catalog.invalidate()
    return CompactionResult(inputs, outputs, spans)


def _merge(loc: Location, catalog: Catalog, partition: str, group: list[Segment], grace_s: float,
           still_leader: Callable[[], bool], holder: str) -> int:
    """Write ``group`` as one merged segment (and delete the inputs, without a grace period)."""
    merged = pa.concat_tables([read_segment(loc, s.path) for s in group])
    replaces = [loc.relative(s.path) for s in group]
    name = "c" + hashlib.sha256("\n".join(sorted(replaces)).encode()).hexdigest()[:16]
    _require(still_leader)
    write_segment(loc, partition, name, merged, _merged_meta(group, replaces, holder))
    catalog.invalidate()
    if grace_s <= 0:
        _require(still_leader)
        for s in group:
            delete_segment(loc, s.path)
    return int(merged.num_rows)


def drop_older_than(loc: Location, cutoff_ns: int, catalog: Catalog, tenant: str | None = None,
                    still_leader: Callable[[], bool] = lambda: True) -> int:
    """Delete every hour partition (of ``tenant``, or of every tenant) that ends before ``cutoff_ns``;
    returns how many."""
    dropped = 0
    for partition in partitions(loc):
        if tenant is not None and tenant_of_partition(partition) != tenant:
            continue
        if _partition_end_ns(partition) <= cutoff_ns:
            _require(still_leader)
            _delete_dir(loc, loc.join(SPANS_DIR, partition))
            dropped += 1
    if loc.is_local:  # an object store has no empty directories to leave behind
        _remove_empty_date_dirs(loc)
    catalog.invalidate()
    return dropped


def partitions(loc: Location) -> list[str]:
    """The ``[tenant=T/]date=.../hour=..`` partitions that hold files, by tenant, oldest first (the
    pre-tenant ``date=.../hour=..`` ones belong to the default tenant)."""
    selector = pafs.FileSelector(loc.join(SPANS_DIR), recursive=True, allow_not_found=True)
    try:
        infos = loc.fs.get_file_info(selector)
    except OSError as e:
        raise StorageUnavailable(f"cannot list {loc.uri}: {e}") from None
    found = set()
    for info in infos:
        if info.type != pafs.FileType.File:
            continue
        rel = posixpath.relpath(info.path, loc.join(SPANS_DIR)).split("/")[:-1]
        if len(rel) == 3 and not rel[0].startswith("tenant="):
            continue
        if len(rel) in (2, 3) and rel[-2].startswith("date=") and rel[-1].startswith("hour="):
            found.add("/".join(rel))
    return sorted(found)


def _remove_empty_date_dirs(loc: Location) -> None:
    """Locally, remove the ``[tenant=T/]date=...`` directories retention emptied."""
    def subdirs(path: str) -> list[pafs.FileInfo]:
        infos = loc.fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
        return [i for i in infos if i.type == pafs.FileType.Directory]

    top = subdirs(loc.join(SPANS_DIR))
    dates = [d for d in top if d.base_name.startswith("date=")]
    dates += [d for t in top if t.base_name.startswith("tenant=") for d in subdirs(t.path)]
    for date in dates:
        if not loc.fs.get_file_info(pafs.FileSelector(date.path)):
            loc.fs.delete_dir(date.path)


def _delete_dir(loc: Location, path: str) -> None:
    try:
        loc.fs.delete_dir(path)
    except FileNotFoundError:
        pass


def _require(still_leader: Callable[[], bool]) -> None:
    if not still_leader():
        raise LostLeadership("the compactor lease was lost; another process compacts now")


def _partition_end_ns(partition: str) -> int:
    """End of the hour a ``[tenant=T/]date=YYYY-MM-DD/hour=HH`` partition holds, in ns since the epoch."""
    date_part, hour_part = partition.split("/")[-2:]
    day = dt.datetime.strptime(date_part.removeprefix("date="), "%Y-%m-%d").replace(tzinfo=dt.UTC)
    return int(day.timestamp()) * 10**9 + (int(hour_part.removeprefix("hour=")) + 1) * HOUR_NS


def _by_partition(loc: Location, segments: list[Segment]) -> dict[str, list[Segment]]:
    groups: dict[str, list[Segment]] = defaultdict(list)
    for s in segments:
        groups[posixpath.dirname(posixpath.relpath(s.path, loc.join(SPANS_DIR)))].append(s)
    return groups


def _groups(segments: list[Segment], max_spans: int) -> list[list[Segment]]:
    """Consecutive runs of small segments whose total stays within ``max_spans``."""
    groups: list[list[Segment]] = [[]]
    total = 0
    for s in sorted(segments, key=lambda s: posixpath.basename(s.path)):
        if s.num_spans >= max_spans:
            continue  # already full size
        if total + s.num_spans > max_spans and groups[-1]:
            groups.append([])
            total = 0
        groups[-1].append(s)
        total += s.num_spans
    return [g for g in groups if g]


def _merged_meta(group: list[Segment], replaces: list[str], holder: str) -> dict[str, object]:
    wal: dict[str, int] = {}
    for s in group:  # keep every writer's WAL position: crash recovery reads it (store.py)
        for writer, seq in s.meta.get("wal_seq", {}).items():
            wal[writer] = max(wal.get(writer, -1), int(seq))
    return {"writer": "compactor", "wal_seq": wal, "replaces": replaces, "compacted_by": holder,
            "compacted_at_ns": time.time_ns()}


def _delete_replaced(loc: Location, catalog: Catalog, grace_s: float,
                     still_leader: Callable[[], bool]) -> None:
    """Delete inputs that a merged segment replaced at least ``grace_s`` ago (or that a crash left)."""
    listed = set(list_segment_paths(loc))
    cutoff = time.time_ns() - int(grace_s * 1e9)
    for s in catalog.segments():
        if int(s.meta.get("compacted_at_ns", 0)) > cutoff:
            continue
        for rel in s.meta.get("replaces", []):
            if loc.join(rel) in listed:
                _require(still_leader)
                delete_segment(loc, loc.join(rel))
