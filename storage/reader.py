"""The read path: trace lookups straight from Parquet row groups, searches in DuckDB.

Every query works on one ``Snapshot`` (committed segments + unflushed tail). Segments are pruned on
their footer description before DuckDB opens anything; user values always travel as query
parameters, never inside the SQL text.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from spanlake.storage.api import DependencyLink, Operation, TraceQuery
from spanlake.storage.catalog import Snapshot
from spanlake.storage.location import StorageUnavailable
from spanlake.storage.schema import SPAN_SCHEMA
from spanlake.storage.segments import END_TIME_SQL, Segment, segments_dataset, with_end_time
from spanlake.storage.sql import store_unreadable
from spanlake.storage.traceql import jaeger as jaeger_search
from spanlake.storage.traceql.engine import TraceQLEngine
from spanlake.storage.traceql.jaeger import SPECIAL_KEYS


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
        snap = self._snapshot()
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
        snap = self._snapshot()
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
        snap = self._snapshot()
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
        snap = self._snapshot()
        segments = [s for s in snap.segments if _overlaps(s, start_time_min_ns, start_time_max_ns)
                    and (segment_filter is None or segment_filter(s))]
        if trace_ids is not None:
            segments = [s for s in segments if any(s.may_contain(t) for t in trace_ids)]
        return self._arrow(sql, snap, segments, params, tables)

    # --- DuckDB plumbing -----------------------------------------------------------------------
    def _cursor(self, snap: Snapshot, segments: list[Segment]) -> tuple[duckdb.DuckDBPyConnection, str]:
        """A cursor with the tail (and, off local disk, the segments) registered, and the SQL
        relation of the spans to search."""
        with self._db_lock:
            cur = self._db.cursor()
        cur.register("tail", snap.tail)
        if not segments:
            return cur, "tail"
        if segments[0].loc.is_local:  # DuckDB's own reader: its fastest path on local files
            files = ", ".join(_quote(s.path) for s in segments)
            scan = f"read_parquet([{files}], hive_partitioning = false)"
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
                raise _unavailable(e) from None
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
                raise _unavailable(e) from None
            raise
        finally:
            cur.close()


def _unavailable(e: Exception) -> StorageUnavailable:
    return StorageUnavailable(f"cannot read the span store: {e}")


def _quote(path: str) -> str:
    """A segment path as a SQL string literal (our own paths, never user input)."""
    return "'" + str(path).replace("'", "''") + "'"


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
