"""Runs TraceQL searches: SQL finds candidate traces and reads their rows, ``evaluate`` finishes.

Phase 1 lists the traces that pass the plan's prefilter, newest first (latest span start); when
the prefilter is exact it applies ``limit`` itself. Phase 2 reads the rows of a page of those
traces (only segments whose trace-ID sidecars may hold them) and evaluates the query per trace,
page after page, until ``limit`` traces matched.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import pyarrow as pa

from spanlake.storage.traceql import model as m
from spanlake.storage.traceql import prune
from spanlake.storage.traceql.compile import TRACE_STATS_SQL, TRACE_WINDOW
from spanlake.storage.traceql.evaluate import Evaluator, Spanset, Trace
from spanlake.storage.traceql.plan import Plan
from spanlake.storage.traceql.values import ValueSpec, to_python

if TYPE_CHECKING:  # the reader runs Jaeger searches through this engine: no import cycle at run time
    from spanlake.storage.segments import Segment

_ROW_COLUMNS = ("trace_id", "span_id", "parent_span_id", "start_time_unix_nano", "duration_nano",
                "name", "service_name", "status_code")
_MIN_PAGE, _MAX_PAGE = 200, 20_000
_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


class SqlSource(Protocol):
    """Where the engine's SQL runs: one tenant's ``Reader``, or a reader that picks the request's
    tenant's on each call (``spanlake.tenancy.TenantReader``)."""

    def run_sql(self, sql: str, params: dict[str, Any], start_time_min_ns: int | None = None,
                start_time_max_ns: int | None = None, trace_ids: Sequence[bytes] | None = None,
                tables: Mapping[str, pa.Table] | None = None,
                segment_filter: Callable[[Segment], bool] | None = None) -> pa.Table: ...

    def run_sql_newest_first(self, sql: str, params: dict[str, Any], start_time_min_ns: int,
                             start_time_max_ns: int, segment_filter: Callable[[Segment], bool] | None = None,
                             ) -> Iterator[tuple[pa.Table, int | None]]: ...


@dataclass
class MatchedTrace:
    trace_id: bytes
    rows: list[dict[str, Any]]  # the trace's rows that left SQL (``_ROW_COLUMNS`` + typed values)
    spansets: list[Spanset]
    values: list[ValueSpec]


@dataclass
class TraceSummary:
    root_service: str
    root_name: str
    start_ns: int
    end_ns: int
    services: dict[str, tuple[int, int]]  # service -> (spans, errors)


@dataclass
class Inspection:
    """What a search looked at: ``truncated`` when it stopped at ``max_inspected_traces``."""

    traces: int = 0
    truncated: bool = False


class TraceQLEngine:
    def __init__(self, reader: SqlSource, max_inspected_traces: int = 100_000) -> None:
        self.reader = reader
        # Queries that SQL cannot answer alone (structural operators, pipelines) evaluate candidate
        # traces in Python; past this many the search stops and says so (Tempo bounds its jobs too).
        self.max_inspected_traces = max_inspected_traces

    def search(self, query: m.Query, start_ns: int, end_ns: int, limit: int,
               inspection: Inspection | None = None) -> list[MatchedTrace]:
        """Traces matching the query's spanset part, newest first, at most ``limit``."""
        return list(self.iter_matches(Plan(query.pipeline), start_ns, end_ns, limit, inspection))

    def iter_matches(self, plan: Plan, start_ns: int, end_ns: int, limit: int | None,
                     inspection: Inspection | None = None) -> Iterator[MatchedTrace]:
        seen = inspection if inspection is not None else Inspection()
        evaluator = Evaluator(plan.filter_index, plan.value_index)
        ids = self._candidates(plan, start_ns, end_ns, limit if plan.exact else None)
        if len(ids) > self.max_inspected_traces:
            ids, seen.truncated = ids[:self.max_inspected_traces], True
        found, offset = 0, 0
        page_size = max(_MIN_PAGE, 4 * (limit or 0))
        while offset < len(ids):
            # Pages grow geometrically: a rare structural match costs O(log n) scans, not n / page.
            page = ids[offset:offset + page_size]
            offset, page_size = offset + len(page), min(page_size * 4, _MAX_PAGE)
            seen.traces += len(page)
            for trace_id, rows in self._rows(plan, page, start_ns, end_ns):
                spansets = evaluator.run(plan.pipeline, _trace(plan, rows))
                if not spansets:
                    continue
                yield MatchedTrace(trace_id, rows, spansets, plan.values)
                found += 1
                if limit is not None and found >= limit:
                    return

    def trace_ids(self, spanset: m.SpansetFilter, start_ns: int, end_ns: int, limit: int,
                  segment_filter: Callable[[Segment], bool] | None = None) -> list[bytes]:
        """IDs of traces with a span matching ``spanset`` in the window, newest first (latest
        matching span start), at most ``limit``: the whole answer in one SQL query."""
        plan = Plan(m.Pipeline((spanset,)))
        return self._candidates(plan, start_ns, end_ns, max(0, limit), segment_filter)

    def summaries(self, trace_ids: list[bytes], start_ns: int, end_ns: int) -> dict[bytes, TraceSummary]:
        """Root span, time range and per-service span/error counts of each trace (all its spans)."""
        if not trace_ids:
            return {}
        sql = """
            SELECT trace_id, service_name, min(start_time_unix_nano) AS lo, max(end_time_unix_nano) AS hi,
                   count(*) AS spans, count(*) FILTER (WHERE status_code = 2) AS errors,
                   arg_min(name, start_time_unix_nano) FILTER (WHERE parent_span_id IS NULL) AS root
            FROM {spans} WHERE trace_id IN (SELECT trace_id FROM _ids) GROUP BY trace_id, service_name"""
        ids = pa.table({"trace_id": pa.array(trace_ids, pa.binary(16))})
        table = self.reader.run_sql(sql, {}, trace_ids=trace_ids, tables={"_ids": ids})
        out: dict[bytes, TraceSummary] = {}
        for row in table.to_pylist():
            s = out.setdefault(row["trace_id"], TraceSummary("", "", row["lo"], row["hi"], {}))
            s.start_ns, s.end_ns = min(s.start_ns, row["lo"]), max(s.end_ns, row["hi"])
            s.services[row["service_name"]] = (row["spans"], row["errors"])
            if row["root"] is not None and not s.root_name:
                s.root_service, s.root_name = row["service_name"], row["root"]
        return out

    # --- SQL ----------------------------------------------------------------------------------
    def _source(self, plan: Plan) -> str:
        """The spans in the window, with the trace-level columns when a filter reads them."""
        window = "start_time_unix_nano BETWEEN $lo AND $hi"
        if not plan.compiler.uses_trace_stats:
            return f"(SELECT * FROM {{spans}} WHERE {window})"
        return (f"(SELECT *, {TRACE_STATS_SQL} FROM {{spans}} WHERE {window} {TRACE_WINDOW})")

    def _candidates(self, plan: Plan, start_ns: int, end_ns: int, limit: int | None,
                    segment_filter: Callable[[Segment], bool] | None = None) -> list[bytes]:
        """Traces that pass the prefilter, newest first: by the latest start of a span that matches
        one of the query's filters (only those rows are grouped, so ``max`` sees only them)."""
        params = {**plan.compiler.params, "lo": start_ns, "hi": end_ns}
        matching = " OR ".join(f"({c})" for c in plan.filter_sql) or "TRUE"
        having = "" if len(plan.filter_sql) == 1 else f" HAVING {plan.prefilter()}"
        sql = (f"SELECT trace_id, max(start_time_unix_nano) AS latest FROM {self._source(plan)} "
               f"WHERE {matching} GROUP BY trace_id{having} ORDER BY latest DESC, trace_id")
        if limit is not None:
            sql += " LIMIT $limit"
            params["limit"] = limit
        if segment_filter is None and not plan.compiler.uses_trace_stats:
            segment_filter = prune.segment_filter(plan.filters)
        if limit and len(plan.filter_sql) == 1 and not plan.compiler.uses_trace_stats:
            return self._newest_candidates(sql, used_params(params, sql), start_ns, end_ns, limit,
                                           segment_filter)
        table = self.reader.run_sql(sql, used_params(params, sql), start_ns, end_ns,
                                    segment_filter=segment_filter)
        return [bytes(t) for t in table.column("trace_id").to_pylist()]

    def _newest_candidates(self, sql: str, params: dict[str, Any], start_ns: int, end_ns: int, limit: int,
                           segment_filter: Callable[[Segment], bool] | None) -> list[bytes]:
        """``_candidates`` with a limit, read newest segments first until the answer is settled.

        Only for one filter over span rows: a trace's rank is then the latest start of its matching
        spans, and a later batch holds no span newer than its bound. Once ``limit`` traces rank above
        that bound no later batch can change them (each batch's own top ``limit``, merged by the
        maximum, is the top ``limit`` of the union)."""
        best: dict[bytes, int] = {}
        top: list[tuple[bytes, int]] = []
        for table, bound in self.reader.run_sql_newest_first(sql, params, start_ns, end_ns, segment_filter):
            for trace_id, latest in zip(table.column("trace_id").to_pylist(),
                                        table.column("latest").to_pylist(), strict=True):
                best[trace_id] = max(latest, best.get(trace_id, latest))
            top = sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
            if bound is None or (len(top) == limit and top[-1][1] > bound):
                break
        return [bytes(t) for t, _ in top]

    def _rows(self, plan: Plan, ids: list[bytes], start_ns: int, end_ns: int
              ) -> Iterator[tuple[bytes, list[dict[str, Any]]]]:
        columns = [*_ROW_COLUMNS,
                   *(f"({sql}) AS f{n}" for n, sql in enumerate(plan.filter_sql)),
                   *(f"({sql}) AS v{n}" for n, sql in enumerate(plan.value_sql))]
        sql = (f"SELECT {', '.join(columns)} FROM {self._source(plan)} "
               f"WHERE trace_id IN (SELECT trace_id FROM _page) AND ({plan.row_filter()}) "
               "ORDER BY trace_id, start_time_unix_nano, span_id")
        params = {**plan.compiler.params, "lo": start_ns, "hi": end_ns}
        page = pa.table({"trace_id": pa.array(ids, pa.binary(16))})
        table = self.reader.run_sql(sql, used_params(params, sql), start_ns, end_ns, trace_ids=ids,
                                    tables={"_page": page})
        by_trace = _group_rows(table, plan)
        for trace_id in ids:  # keep the newest-first order of the candidates
            rows = by_trace.get(trace_id)
            if rows:
                yield trace_id, rows


def used_params(params: dict[str, Any], sql: str) -> dict[str, Any]:
    """The parameters the SQL names (DuckDB refuses extra ones)."""
    named = set(_PARAM.findall(sql))
    return {k: v for k, v in params.items() if k in named}


def _group_rows(table: pa.Table, plan: Plan) -> dict[bytes, list[dict[str, Any]]]:
    out: dict[bytes, list[dict[str, Any]]] = {}
    for row in table.to_pylist():
        for n, spec in enumerate(plan.values):
            row[f"r{n}"] = row[f"v{n}"]  # as DuckDB gave it (typed text for attributes: group keys)
            row[f"v{n}"] = to_python(spec, row[f"v{n}"])
        out.setdefault(row["trace_id"], []).append(row)
    return out


def _trace(plan: Plan, rows: list[dict[str, Any]]) -> Trace:
    trace = Trace([r["span_id"] for r in rows], [r["parent_span_id"] for r in rows],
                  [[bool(r[f"f{n}"]) for r in rows] for n in range(len(plan.filters))],
                  [[r[f"v{n}"] for r in rows] for n in range(len(plan.values))])
    tree_values = [n for n, v in enumerate(plan.values) if v.kind == "tree"]
    if tree_values:
        left, right = trace.tree.nested_set()
        for n in tree_values:
            expr = plan.values[n].expr
            assert isinstance(expr, m.Intrinsic)  # only intrinsics are "tree" values
            column = {
                "nestedSetLeft": left, "nestedSetRight": right,
                "nestedSetParent": [left[p] if p >= 0 else -1 for p in trace.tree.parent],
                "childCount": [len(c) for c in trace.tree.children],
            }[expr.name]
            trace.values[n] = list(column)
            for row, value in zip(rows, column, strict=True):
                row[f"v{n}"] = value
    return trace
