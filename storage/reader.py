"""The read path: trace lookups straight from Parquet row groups, searches in DuckDB.

Every query works on one ``Snapshot`` (committed segments + unflushed tail). Segments are pruned on
their footer description before DuckDB opens anything; user values always travel as query
parameters, never inside the SQL text.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from spanlake.storage.api import DependencyLink, Operation, TraceQuery
from spanlake.storage.catalog import Snapshot
from spanlake.storage.location import StorageUnavailable
from spanlake.storage.schema import SPAN_SCHEMA
from spanlake.storage.segments import (
    END_TIME_SQL,
    Segment,
    local_files,
    parquet_scan_sql,
    segments_dataset,
    with_end_time,
)
from spanlake.storage.sql import store_unreadable
from spanlake.storage.traceql import jaeger as jaeger_search
from spanlake.storage.traceql.engine import TraceQLEngine
from spanlake.storage.traceql.jaeger import SPECIAL_KEYS

T = TypeVar("T")

# Spans in the first batch of a newest-first search: enough that a common search ends in one query.
FIRST_BATCH_SPANS = 200_000


class Reader:
    def __init__(self, snapshot: Callable[[], Snapshot], shared: Reader | None = None) -> None:
        """``shared``: another reader whose DuckDB database this one uses (one per tenant would
        multiply DuckDB's memory and threads)."""
        self._snapshot = snapshot
        if shared is None:
            self._db = duckdb.connect(":memory:", config={"threads": 2})
            self._db_lock = threading.Lock()
        else:
            self._db, self._db_lock = shared._db, shared._db_lock

    # --- trace by ID: no time range, no scan -------------------------------------------------
    def get_traces(self, trace_ids: Sequence[bytes], max_spans_per_trace: int | None = None) -> pa.Table:
        """With ``max_spans_per_trace``, segments are read earliest first and a trace stops being
        read once that many of its spans are known to come before anything left unread (the caller
        cuts it to its first spans): a huge trace costs bounded memory."""
        ids = list(dict.fromkeys(bytes(t) for t in trace_ids if len(t) == 16))
        if not ids:
            return SPAN_SCHEMA.empty_table()
        return self._fresh_if_vanished(lambda snap: self._get_traces(snap, ids, max_spans_per_trace))

    def _get_traces(self, snap: Snapshot, ids: list[bytes], max_spans_per_trace: int | None) -> pa.Table:
        wanted = pa.array(ids, pa.binary(16))
        parts = [_filter_ids(snap.tail, wanted)]
        segments = snap.segments
        if max_spans_per_trace is not None:
            segments = sorted(segments, key=lambda s: int(s.meta["min_start_ns"]))
        # The trace-ID sidecars (exact, in memory) pick the segments; in each, the row-group
        # trace_id statistics pick the row groups to decode. (DuckDB does not prune row groups on
        # fixed-size binary statistics: ~10x slower here at the same row-group size, bench/layout.py.)
        try:
            for seg in segments:
                hits = [t for t in ids if seg.may_contain(t)]
                if hits and max_spans_per_trace is not None:  # counted only where a trace may be
                    before = _spans_before(parts, int(seg.meta["min_start_ns"]))
                    hits = [t for t in hits if before.get(t, 0) < max_spans_per_trace]
                if hits:
                    parts.append(with_end_time(seg.read_traces(hits)))
        except OSError as e:
            if isinstance(e, StorageUnavailable) or not segments[0].loc.is_local:
                raise _unavailable(e) from None
            if _vanished(segments):
                raise SegmentVanished(str(e)) from None
            raise
        return pa.concat_tables([p.cast(SPAN_SCHEMA) for p in parts])

    # --- search --------------------------------------------------------------------------------
    def find_trace_ids(self, query: TraceQuery) -> list[bytes]:
        """A Jaeger search is a spanset filter of the TraceQL query model, run by its engine."""
        spanset, lo, hi = jaeger_search.to_filter(query)
        return TraceQLEngine(self).trace_ids(spanset, lo, hi, query.search_depth,
                                             segment_filter=lambda s: _may_match(s, query))

    def get_services(self) -> list[str]:
        snap = self._snapshot()
        names = {n for s in snap.segments for n in s.meta["services"]}
        names.update(pc.unique(snap.tail.column("service_name")).to_pylist())
        return sorted(names)

    def get_operations(self, service: str, span_kind: int | None = None) -> list[Operation]:
        snap = self._snapshot()
        ops = {(name, kind) for s in snap.segments for svc, name, kind in s.meta["operations"]
               if svc == service}
        tail = snap.tail.filter(pc.equal(snap.tail.column("service_name"), service))
        ops.update(zip(tail.column("name").to_pylist(), tail.column("kind").to_pylist(), strict=True))
        return sorted(Operation(n, int(k)) for n, k in ops if span_kind is None or k == span_kind)

    def get_dependencies(self, end_time_ns: int, lookback_ns: int) -> list[DependencyLink]:
        return self._fresh_if_vanished(lambda snap: self._dependencies(snap, end_time_ns, lookback_ns))

    def _dependencies(self, snap: Snapshot, end_time_ns: int, lookback_ns: int) -> list[DependencyLink]:
        lo, hi = end_time_ns - lookback_ns, end_time_ns
        segments = [s for s in snap.segments if _overlaps(s, lo, hi)]
        sql = """
            WITH s AS (SELECT trace_id, span_id, parent_span_id, service_name FROM {spans}
                       WHERE start_time_unix_nano BETWEEN $lo AND $hi)
            SELECT p.service_name, c.service_name, count(*) FROM s AS c
            JOIN s AS p ON c.trace_id = p.trace_id AND c.parent_span_id = p.span_id
            WHERE p.service_name <> c.service_name GROUP BY 1, 2 ORDER BY 1, 2"""
        rows = self._run(sql, snap, segments, {"lo": lo, "hi": hi})
        return [DependencyLink(str(p), str(c), int(n)) for p, c, n in rows]

    def scan_spans(self, columns: Sequence[str], start_time_min_ns: int, start_time_max_ns: int,
                   services: Sequence[str] | None = None) -> pa.Table:
        unknown = set(columns) - set(SPAN_SCHEMA.names)
        if unknown:
            raise ValueError(f"unknown span columns: {sorted(unknown)}")
        return self._fresh_if_vanished(
            lambda snap: self._scan(snap, columns, start_time_min_ns, start_time_max_ns, services))

    def _scan(self, snap: Snapshot, columns: Sequence[str], start_time_min_ns: int, start_time_max_ns: int,
              services: Sequence[str] | None) -> pa.Table:
        segments = [s for s in snap.segments if _overlaps(s, start_time_min_ns, start_time_max_ns)
                    and (services is None or set(services) & set(s.meta["services"]))]
        cols = ", ".join(f'"{c}"' for c in columns)
        params: dict[str, Any] = {"lo": start_time_min_ns, "hi": start_time_max_ns}
        cond = "start_time_unix_nano BETWEEN $lo AND $hi"
        if services is not None:
            cond += " AND list_contains($services, service_name)"
            params["services"] = list(services)
        return self._arrow(f"SELECT {cols} FROM {{spans}} WHERE {cond}", snap, segments, params)

    def run_sql(self, sql: str, params: dict[str, Any], start_time_min_ns: int | None = None,
                start_time_max_ns: int | None = None, trace_ids: Sequence[bytes] | None = None,
                tables: Mapping[str, pa.Table] | None = None,
                segment_filter: Callable[[Segment], bool] | None = None) -> pa.Table:
        """Run a SELECT of storage's own (the TraceQL engine's), ``{spans}`` standing for the spans.

        Only segments that may hold spans starting in the window (and, given ``trace_ids``, one of
        those traces, by the trace-ID sidecars; given ``segment_filter``, that it accepts) are read;
        ``tables`` are registered by name.
        """
        def run(snap: Snapshot) -> pa.Table:
            segments = [s for s in snap.segments if _overlaps(s, start_time_min_ns, start_time_max_ns)
                        and (segment_filter is None or segment_filter(s))]
            if trace_ids is not None:
                segments = [s for s in segments if any(s.may_contain(t) for t in trace_ids)]
            return self._arrow(sql, snap, segments, params, tables)

        return self._fresh_if_vanished(run)

    def run_sql_newest_first(self, sql: str, params: dict[str, Any], start_time_min_ns: int,
                             start_time_max_ns: int, segment_filter: Callable[[Segment], bool] | None = None,
                             ) -> Iterator[tuple[pa.Table, int | None]]:
        """``run_sql`` over one snapshot in batches of segments, newest first; yields each batch's
        result and the latest span start any later batch may hold (None after the last batch).
        Nothing at all when no segment is left and the tail is empty.

        The tail (the newest spans) is in the first batch only. Batches double in size, so a search
        that must read everything costs a few extra queries, and one that finds its answer among the
        newest spans stops early (the caller decides, from the bound, when it may stop). If
        compaction removed a listed segment meanwhile, batches start over on a fresh snapshot: a
        batch repeated is harmless to a caller that merges by trace.
        """
        try:
            yield from self._newest_first(self._snapshot(), sql, params, start_time_min_ns,
                                          start_time_max_ns, segment_filter)
        except SegmentVanished:
            yield from self._newest_first(self._snapshot(), sql, params, start_time_min_ns,
                                          start_time_max_ns, segment_filter)

    def _newest_first(self, snap: Snapshot, sql: str, params: dict[str, Any], start_time_min_ns: int,
                      start_time_max_ns: int, segment_filter: Callable[[Segment], bool] | None,
                      ) -> Iterator[tuple[pa.Table, int | None]]:
        segments = sorted((s for s in snap.segments if _overlaps(s, start_time_min_ns, start_time_max_ns)
                           and (segment_filter is None or segment_filter(s))),
                          key=lambda s: int(s.meta["max_start_ns"]), reverse=True)
        if not segments and snap.tail.num_rows == 0:
            return  # nothing can match: no query at all (a search that matches nothing is common)
        later = Snapshot([], snap.tail.schema.empty_table())
        batches = _batches(segments, FIRST_BATCH_SPANS)
        for n, batch in enumerate(batches):
            table = self._arrow(sql, snap if n == 0 else later, batch, params)
            bound = int(batches[n + 1][0].meta["max_start_ns"]) if n + 1 < len(batches) else None
            yield table, bound

    def _fresh_if_vanished(self, run: Callable[[Snapshot], T]) -> T:
        """``run`` on a snapshot, and once more on a fresh one if a segment it listed was deleted
        meanwhile (compaction removed merged inputs; the fresh snapshot has their merged segment)."""
        try:
            return run(self._snapshot())
        except SegmentVanished:
            return run(self._snapshot())

    # --- DuckDB plumbing -----------------------------------------------------------------------
    def _cursor(self, snap: Snapshot, segments: list[Segment]) -> tuple[duckdb.DuckDBPyConnection, str]:
        """A cursor with the tail (and, without local files, the segments) registered, and the SQL
        relation of the spans to search."""
        with self._db_lock:
            cur = self._db.cursor()
        cur.register("tail", snap.tail)
        if not segments:
            return cur, "tail"
        files = local_files(segments)  # a local store, or a remote one's disk cache
        if files is not None:
            scan = parquet_scan_sql(files)
        else:  # DuckDB cannot reach S3 without its httpfs download: hand it pyarrow's dataset
            cur.register("segments", segments_dataset(segments))
            scan = "segments"
        return cur, f"(SELECT *, {END_TIME_SQL} FROM {scan} UNION ALL BY NAME SELECT * FROM tail)"

    def _run(self, sql: str, snap: Snapshot, segments: list[Segment],
             params: dict[str, Any]) -> list[tuple[Any, ...]]:
        cur, spans = self._cursor(snap, segments)
        try:
            return cur.execute(sql.format(spans=spans), params).fetchall()
        except duckdb.Error as e:
            if store_unreadable(e):
                raise _vanished_or_unavailable(e, segments) from None
            raise
        finally:
            cur.close()

    def _arrow(self, sql: str, snap: Snapshot, segments: list[Segment], params: dict[str, Any],
               tables: Mapping[str, pa.Table] | None = None) -> pa.Table:
        cur, spans = self._cursor(snap, segments)
        try:
            for name, table in (tables or {}).items():
                cur.register(name, table)
            return cur.sql(sql.format(spans=spans), params=params).to_arrow_table()
        except duckdb.Error as e:
            if store_unreadable(e):
                raise _vanished_or_unavailable(e, segments) from None
            raise
        finally:
            cur.close()


def _batches(segments: list[Segment], first_spans: int) -> list[list[Segment]]:
    """Consecutive runs of ``segments`` (at least one batch, maybe empty), each at least twice the
    spans of the one before."""
    batches: list[list[Segment]] = [[]]
    target, spans = first_spans, 0
    for seg in segments:
        if spans >= target:
            batches.append([])
            target, spans = target * 2, 0
        batches[-1].append(seg)
        spans += seg.num_spans
    return batches


class SegmentVanished(StorageUnavailable):
    """A segment file of the snapshot was deleted while a query read it (compaction)."""


def _vanished(segments: list[Segment]) -> bool:
    """Whether a local segment file of ``segments`` no longer exists."""
    return any(s.loc.is_local and not os.path.exists(s.path) for s in segments)


def _vanished_or_unavailable(e: Exception, segments: list[Segment]) -> StorageUnavailable:
    if _vanished(segments):
        return SegmentVanished(f"cannot read the span store: {e}")
    return _unavailable(e)


def _unavailable(e: Exception) -> StorageUnavailable:
    return StorageUnavailable(f"cannot read the span store: {e}")


def _spans_before(parts: list[pa.Table], start_ns: int) -> dict[bytes, int]:
    """Spans per trace in ``parts`` that start before ``start_ns``."""
    counts: dict[bytes, int] = {}
    for part in parts:
        early = part.filter(pc.less(part.column("start_time_unix_nano"), start_ns))
        for c in pc.value_counts(early.column("trace_id")).to_pylist():
            counts[c["values"]] = counts.get(c["values"], 0) + c["counts"]
    return counts


def _filter_ids(table: pa.Table, wanted: pa.Array) -> pa.Table:
    if table.num_rows == 0:
        return table
    return table.filter(pc.is_in(table.column("trace_id"), value_set=wanted))


def _overlaps(seg: Segment, lo: int | None, hi: int | None) -> bool:
    return (lo is None or seg.meta["max_start_ns"] >= lo) and (hi is None or seg.meta["min_start_ns"] <= hi)


def _may_match(seg: Segment, query: TraceQuery) -> bool:
    """Footer pruning: skip segments whose time range, services or operations rule them out."""
    if not _overlaps(seg, query.start_time_min_ns, query.start_time_max_ns):
        return False
    if query.service_name and query.service_name not in seg.meta["services"]:
        return False
    if query.operation_name:
        ops = seg.meta["operations"]
        if not any(name == query.operation_name and (not query.service_name or svc == query.service_name)
                   for svc, name, _ in ops):
            return False
    return all(seg.may_have_tag(key.removeprefix("resource."), str(value))
               for key, value in query.attributes.items() if key not in SPECIAL_KEYS)
