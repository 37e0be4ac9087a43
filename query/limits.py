"""Query limits, as Tempo's and ClickHouse's: every reader call a request can grow is bounded.

``LimitedReader`` wraps the store's reader for every query API:

- a search (and the dependency and metrics scans) may cover at most ``max_window_ns`` of time and
  ask for at most ``max_results`` traces; beyond either it is refused with ``QueryLimitExceeded``
  (HTTP 400 through ``query/errors.py``) naming the flag, instead of scanning everything;
- every time bound must fit in int64 nanoseconds (a ``lookback`` of 10^18 ms used to reach DuckDB
  and come back as HTTP 500);
- a trace bigger than ``max_spans_per_trace`` spans or ``max_bytes_per_trace`` bytes is returned
  cut to its first spans by start time, and marked partial (``partial_traces``), as Tempo returns
  the first part of a trace over ``max_bytes_per_trace``. A 300,000-span trace was 140 MB of JSON and
  ten fetches of it took the server to 13.5 GB (issue 14).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from spanlake.query.params import ParamError
from spanlake.storage.api import DependencyLink, Operation, SpanReader, TraceQuery

HOUR_NS = 3600 * 10**9
INT64_MAX = 2**63 - 1
PARTIAL_KEY = b"spanlake.partial_traces"  # table metadata: {trace id hex: spans the trace has (at least)}


class QueryLimitExceeded(Exception):
    """A request over one of the query limits; the message names the flag that sets it."""


@dataclass(frozen=True)
class QueryLimits:
    max_window_ns: int = 31 * 24 * HOUR_NS
    max_results: int = 1500
    max_spans_per_trace: int = 50_000
    max_bytes_per_trace: int = 64 * 1024 * 1024


class LimitedReader:
    """A ``SpanReader`` that applies ``limits`` to ``reader``."""

    def __init__(self, reader: SpanReader, limits: QueryLimits = QueryLimits()) -> None:
        self.reader = reader
        self.limits = limits

    def get_traces(self, trace_ids: Sequence[bytes], start_time_min_ns: int | None = None,
                   start_time_max_ns: int | None = None) -> pa.Table:
        _in_range("start", start_time_min_ns)
        _in_range("end", start_time_max_ns)
        capped = getattr(self.reader, "get_traces_capped", None)
        if capped is not None:  # the segment store stops reading a trace past the limit
            table = capped(trace_ids, self.limits.max_spans_per_trace + 1)
        else:
            table = self.reader.get_traces(trace_ids, start_time_min_ns, start_time_max_ns)
        return truncate_traces(table, self.limits)

    def find_trace_ids(self, query: TraceQuery) -> list[bytes]:
        return self.reader.find_trace_ids(self._checked(query))

    def find_traces(self, query: TraceQuery) -> pa.Table:
        return self.get_traces(self.reader.find_trace_ids(self._checked(query)))

    def get_services(self) -> list[str]:
        return self.reader.get_services()

    def get_operations(self, service: str, span_kind: int | None = None) -> list[Operation]:
        return self.reader.get_operations(service, span_kind)

    def scan_spans(self, columns: Sequence[str], start_time_min_ns: int, start_time_max_ns: int,
                   services: Sequence[str] | None = None) -> pa.Table:
        self._window("lookback", start_time_min_ns, start_time_max_ns)
        return self.reader.scan_spans(columns, start_time_min_ns, start_time_max_ns, services)

    def get_dependencies(self, end_time_ns: int, lookback_ns: int) -> list[DependencyLink]:
        self._window("lookback", end_time_ns - lookback_ns, end_time_ns)
        return self.reader.get_dependencies(end_time_ns, lookback_ns)

    def _checked(self, query: TraceQuery) -> TraceQuery:
        if query.search_depth > self.limits.max_results:
            raise QueryLimitExceeded(f"a search may return at most {self.limits.max_results} traces "
                             f"(--search-max-results), {query.search_depth} were asked for")
        for name, value in (("start", query.start_time_min_ns), ("end", query.start_time_max_ns),
                            ("minDuration", query.duration_min_ns), ("maxDuration", query.duration_max_ns)):
            _in_range(name, value)
        lo, hi = query.start_time_min_ns, query.start_time_max_ns
        if lo is not None and hi is not None:  # the APIs always set both (Jaeger: end - lookback)
            self._window("the search time range", lo, hi)
        return query

    def _window(self, name: str, lo: int, hi: int) -> None:
        _in_range(name, lo)
        _in_range(name, hi)
        if hi - lo > self.limits.max_window_ns:
            raise QueryLimitExceeded(f"{name} covers {(hi - lo) / HOUR_NS:.1f} h, over the limit of "
                             f"{self.limits.max_window_ns / HOUR_NS:g} h (--search-max-window-hours)")


def _in_range(name: str, value: int | None) -> None:
    if value is not None and not -INT64_MAX <= value <= INT64_MAX:
        raise ParamError(f"'{name}' is out of range: times and durations must fit in int64 nanoseconds")


def truncate_traces(table: pa.Table, limits: QueryLimits) -> pa.Table:
    """Each trace over the limits cut to its first spans by start time; cut traces are listed in the
    table's ``PARTIAL_KEY`` metadata."""
    if table.num_rows <= limits.max_spans_per_trace and table.nbytes <= limits.max_bytes_per_trace:
        return table
    bytes_per_span = max(1, table.nbytes // max(1, table.num_rows))
    keep_n = max(1, min(limits.max_spans_per_trace, limits.max_bytes_per_trace // bytes_per_span))
    counts = pc.value_counts(table.column("trace_id")).to_pylist()
    over = {c["values"]: c["counts"] for c in counts if c["counts"] > keep_n}
    if not over:
        return table
    ids = table.column("trace_id")
    parts = [table.filter(pc.invert(pc.is_in(ids, value_set=pa.array(list(over), pa.binary(16)))))]
    for trace in over:
        spans = table.filter(pc.equal(ids, pa.scalar(trace, pa.binary(16))))
        parts.append(spans.sort_by("start_time_unix_nano").slice(0, keep_n))
    partial = {t.hex(): n for t, n in over.items()}
    out = pa.concat_tables(parts)
    return out.replace_schema_metadata({**(table.schema.metadata or {}), PARTIAL_KEY: json.dumps(partial)})


def partial_traces(table: pa.Table) -> dict[str, int]:
    """``{trace id hex: spans it has (at least)}`` for the traces ``truncate_traces`` cut."""
    raw = (table.schema.metadata or {}).get(PARTIAL_KEY)
    return {str(k): int(v) for k, v in json.loads(raw).items()} if raw else {}


def partial_warning(limits: QueryLimits, total: int) -> str:
    return (f"PARTIAL: this trace has at least {total} spans; only its first spans by start time are "
            f"shown (--max-spans-per-trace {limits.max_spans_per_trace}, --max-bytes-per-trace "
            f"{limits.max_bytes_per_trace})")
