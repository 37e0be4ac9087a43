"""The in-memory reference backend: the search semantics every other backend is tested against.

Spans live in a list of Arrow tables (one per write) under a lock. Reads concatenate them once per
change and filter with pyarrow compute, tags included (``tag_masks.py``); the rare attribute values
that are not strings, bools or numbers are checked by the Python specification (``matching.py``).
Correctness and clarity come before speed here: the Parquet segment store is the one tuned for size.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from spanlake.storage.api import DependencyLink, Operation, TraceQuery
from spanlake.storage.schema import SPAN_SCHEMA
from tests.storage.matching import MATCH_COLUMNS, span_has_marks, span_matches_tags
from tests.storage.tag_masks import tags_mask


class MemoryStore:
    """Implements ``SpanWriter`` and ``SpanReader`` (``storage/api.py``) over tables held in memory.

    Writes are visible to readers as soon as ``write`` returns. Thread-safe: writes append under a
    lock and readers work on an immutable snapshot, so a read never sees half of a write.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._batches: list[pa.Table] = []
        self._snapshot: pa.Table | None = SPAN_SCHEMA.empty_table()

    # -- SpanWriter -------------------------------------------------------------------------------

    def write(self, spans: pa.Table) -> None:
        table = _conform(spans)
        if table.num_rows == 0:
            return
        with self._lock:
            self._batches.append(table)
            self._snapshot = None  # rebuilt by the next reader

    # -- SpanReader -------------------------------------------------------------------------------

    def get_traces(
        self,
        trace_ids: Sequence[bytes],
        start_time_min_ns: int | None = None,
        start_time_max_ns: int | None = None,
    ) -> pa.Table:
        # The time bounds are hints for backends that prune by time; a trace is returned whole, so
        # the reference ignores them.
        del start_time_min_ns, start_time_max_ns
        return _spans_of(self._table(), trace_ids)

    def find_trace_ids(self, query: TraceQuery) -> list[bytes]:
        return _find(self._table(), query)

    def find_traces(self, query: TraceQuery) -> pa.Table:
        table = self._table()  # one snapshot for both steps: the traces found are returned whole
        return _spans_of(table, _find(table, query))

    def get_services(self) -> list[str]:
        names = pc.unique(self._table().column("service_name")).to_pylist()
        # Spans without a service.name carry ""; that is not a service anyone can pick.
        return sorted(name for name in names if name)

    def get_operations(self, service: str, span_kind: int | None = None) -> list[Operation]:
        table = self._table()
        mask = pc.equal(table.column("service_name"), service)
        if span_kind is not None:
            mask = pc.and_(mask, pc.equal(table.column("kind"), span_kind))
        pairs = table.filter(mask).select(["name", "kind"]).group_by(["name", "kind"]).aggregate([])
        return sorted(Operation(row["name"], row["kind"]) for row in pairs.to_pylist())

    def scan_spans(
        self,
        columns: Sequence[str],
        start_time_min_ns: int,
        start_time_max_ns: int,
        services: Sequence[str] | None = None,
    ) -> pa.Table:
        table = self._table()
        mask = _start_window(table, start_time_min_ns, start_time_max_ns)
        if services is not None:
            wanted = pa.array(list(services), pa.string())
            mask = pc.and_(mask, pc.is_in(table.column("service_name"), wanted))
        return table.filter(mask).select(list(columns))

    def get_dependencies(self, end_time_ns: int, lookback_ns: int) -> list[DependencyLink]:
        table = self._table()
        children = table.filter(_start_window(table, end_time_ns - lookback_ns, end_time_ns))
        children = children.filter(pc.is_valid(children.column("parent_span_id")))
        if children.num_rows == 0:
            return []
        # A parent may have started before the window; look it up among all spans of the trace.
        candidates = _spans_of(table, pc.unique(children.column("trace_id")).to_pylist())
        return _count_links(children, candidates)

    # -- lifecycle (the segment store has the same methods) -----------------------------------------

    def flush(self) -> None:
        """Nothing to flush: every write is visible on return."""

    def close(self) -> None:
        with self._lock:
            self._batches.clear()
            self._snapshot = SPAN_SCHEMA.empty_table()

    def _table(self) -> pa.Table:
        with self._lock:
            if self._snapshot is None:
                # One chunk keeps every compute call simple and fast; the merged table replaces the
                # batches, so the next rebuild only appends what was written since.
                self._snapshot = pa.concat_tables(self._batches).combine_chunks()
                self._batches = [self._snapshot]
            return self._snapshot


def _conform(spans: pa.Table) -> pa.Table:
    """``spans`` in exactly ``SPAN_SCHEMA``; raises (storing nothing) when it cannot be."""
    if spans.schema.equals(SPAN_SCHEMA):
        return spans
    try:
        return spans.select(SPAN_SCHEMA.names).cast(SPAN_SCHEMA)
    except (KeyError, pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise ValueError(f"spans do not fit the span schema: {exc}") from exc


def _spans_of(table: pa.Table, trace_ids: Sequence[bytes]) -> pa.Table:
    if not trace_ids:
        return table.schema.empty_table()
    wanted = pa.array(list(dict.fromkeys(trace_ids)), pa.binary(16))
    return table.filter(pc.is_in(table.column("trace_id"), wanted))


def _start_window(table: pa.Table, low: int | None, high: int | None) -> Any:
    """A boolean mask of spans whose start lies in [low, high] (either end open when None)."""
    start = table.column("start_time_unix_nano")
    mask = pc.greater_equal(start, low if low is not None else -(2**63))
    if high is not None:
        mask = pc.and_(mask, pc.less_equal(start, high))
    return mask


def _find(table: pa.Table, query: TraceQuery) -> list[bytes]:
    if query.search_depth < 1:
        raise ValueError(f"search_depth must be at least 1, got {query.search_depth}")
    return _most_recent_traces(_matching_spans(table, query), query.search_depth)


def _matching_spans(table: pa.Table, query: TraceQuery) -> pa.Table:
    """``trace_id`` and ``start_time_unix_nano`` of every span that satisfies all of ``query``."""
    candidates = table.filter(_plain_mask(table, query))
    if query.attributes and candidates.num_rows:
        mask = tags_mask(candidates, query.attributes)
        unsure = np.flatnonzero(mask.maybe)
        if len(unsure):  # bytes, arrays, maps: decided by the specification in matching.py
            rows = candidates.take(pa.array(unsure)).select(list(MATCH_COLUMNS)).to_pylist()
            mask.sure[unsure] = [span_matches_tags(row, query.attributes) for row in rows]
        candidates = candidates.filter(pa.array(mask.sure))
    if query.marks and candidates.num_rows:
        rows = candidates.select(list(MATCH_COLUMNS)).to_pylist()
        candidates = candidates.filter(pa.array([span_has_marks(row, query.marks) for row in rows]))
    return candidates.select(["trace_id", "start_time_unix_nano"])


def _plain_mask(table: pa.Table, query: TraceQuery) -> Any:
    """The filters on plain columns, vectorised, so tag matching only sees the survivors."""
    mask = _start_window(table, query.start_time_min_ns, query.start_time_max_ns)
    if query.service_name:
        mask = pc.and_(mask, pc.equal(table.column("service_name"), query.service_name))
    if query.operation_name:
        mask = pc.and_(mask, pc.equal(table.column("name"), query.operation_name))
    if query.span_kind is not None:
        mask = pc.and_(mask, pc.equal(table.column("kind"), query.span_kind))
    if query.duration_min_ns is not None:
        mask = pc.and_(mask, pc.greater_equal(table.column("duration_nano"), query.duration_min_ns))
    if query.duration_max_ns is not None:
        mask = pc.and_(mask, pc.less_equal(table.column("duration_nano"), query.duration_max_ns))
    return mask


def _most_recent_traces(matching: pa.Table, limit: int) -> list[bytes]:
    """Trace IDs ordered by their latest matching span start, newest first (ties by ID)."""
    order = pc.sort_indices(matching, sort_keys=[("start_time_unix_nano", "descending"),
                                                 ("trace_id", "ascending")])
    # ``unique`` keeps first occurrences in order, and a trace first occurs at its latest span.
    ids: list[bytes] = pc.unique(matching.column("trace_id").take(order))[:limit].to_pylist()
    return ids


def _count_links(children: pa.Table, candidates: pa.Table) -> list[DependencyLink]:
    service_of: dict[tuple[bytes, bytes], str] = {}
    for trace_id, span_id, service in zip(candidates.column("trace_id").to_pylist(),
                                          candidates.column("span_id").to_pylist(),
                                          candidates.column("service_name").to_pylist(), strict=True):
        service_of.setdefault((trace_id, span_id), service)  # duplicate span IDs: the first wins
    counts: dict[tuple[str, str], int] = {}
    for trace_id, parent_id, child in zip(children.column("trace_id").to_pylist(),
                                          children.column("parent_span_id").to_pylist(),
                                          children.column("service_name").to_pylist(), strict=True):
        parent = service_of.get((trace_id, parent_id))
        if parent is not None and parent != child:
            counts[parent, child] = counts.get((parent, child), 0) + 1
    return sorted(DependencyLink(p, c, n) for (p, c), n in counts.items())
