"""What every receiver does between decoding a request and storing it: limits and data quality.

One ``Admission`` wraps the store for all ingest transports:

- before decoding, ``precheck`` asks the store whether it can take writes at all (buffer, disk
  reserve), so a refused request costs no decoding memory (issue 14, case 6);
- ``admit`` refuses a request over ``max_spans_per_request`` as a whole (``TooManySpans``: retrying
  cannot help), then, span by span, with partial success (OTLP ``rejected_spans``):
  - clamps a negative duration (end before start) to 0 and records a warning on the span, in
    the ``@jaeger@warnings`` attribute that Jaeger's UI shows (as Jaeger's adjusters do);
  - rejects a span whose start time is outside ``[now - max_span_age, now + max_span_future]``
    (a start in 1938 used to create a ``date=1938`` partition);
  - rejects spans of a trace that already holds ``max_spans_per_trace`` spans or
    ``max_bytes_per_trace`` bytes (Tempo's ``max_bytes_per_trace``). The count is kept per process
    for the most recent ``TRACKED_TRACES`` traces, as Tempo's ingesters count live traces only, and
    per ``scope()`` (the request's tenant: one tenant's trace ID never uses another's budget). The
    receivers of one process share one ``TraceBudget``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace

import pyarrow as pa
import pyarrow.compute as pc

from spanlake.collector.formats.errors import TooManySpans
from spanlake.collector.formats.result import ConvertResult
from spanlake.storage.api import SpanWriter
from spanlake.storage.attributes import attr

WARNINGS_KEY = "@jaeger@warnings"  # where Jaeger keeps span warnings in OTLP (internal/jptrace)
TRACKED_TRACES = 100_000
HOUR_NS = 3600 * 10**9
_LOG_EVERY_S = 10.0

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestLimits:
    max_spans_per_request: int = 50_000
    max_spans_per_trace: int = 100_000
    max_bytes_per_trace: int = 100 * 1024 * 1024  # Arrow bytes, about 3x the OTLP protobuf size
    # 0: no window. ``spanlake serve`` sets one (ten years back, one ahead: spanlake/config.py);
    # the library default takes any time, for imports of old data and upstream fixtures.
    max_span_age_ns: int = 0
    max_span_future_ns: int = 0


class Admission:
    """A ``SpanWriter`` that applies ``limits`` before writing to ``writer``."""

    def __init__(self, writer: SpanWriter, limits: IngestLimits = IngestLimits(), *,
                 budget: TraceBudget | None = None, scope: Callable[[], str] = lambda: "") -> None:
        self.writer = writer
        self.limits = limits
        self._budget = budget if budget is not None else TraceBudget(TRACKED_TRACES)
        self._scope = scope
        self._last_log = -_LOG_EVERY_S

    @classmethod
    def of(cls, writer: SpanWriter) -> Admission:
        """``writer`` itself if it is an ``Admission``, else one with the default limits."""
        return writer if isinstance(writer, Admission) else cls(writer)

    def precheck(self) -> None:
        """Raise ``StoreOverloaded`` now if the store would refuse any write (before decoding)."""
        check = getattr(self.writer, "check_capacity", None)
        if check is not None:
            check(0)

    def check_count(self, spans: int) -> None:
        if spans > self.limits.max_spans_per_request:
            raise TooManySpans(f"the request has {spans} spans, over the limit of "
                               f"{self.limits.max_spans_per_request} per request "
                               "(--max-spans-per-request); send smaller batches")

    def write(self, spans: pa.Table) -> None:
        self.admit(ConvertResult(spans))

    def admit(self, result: ConvertResult, now_ns: int | None = None) -> ConvertResult:
        """Store what passes; returns ``result`` with the rejected spans counted and explained."""
        spans = result.spans
        self.check_count(spans.num_rows)
        now = time.time_ns() if now_ns is None else now_ns
        messages = [result.message] if result.message else []
        spans, out_of_window = self._in_window(spans, now)
        if out_of_window:
            messages.append(f"{out_of_window} spans rejected: start time outside the accepted window "
                            "(--max-span-age-hours / --max-span-future-hours)")
        spans = clamp_negative_durations(spans)
        spans, over_trace = self._budget.take(spans, self.limits, self._scope())
        if over_trace:
            messages.append(f"{over_trace} spans rejected: their trace is over the per-trace limit of "
                            f"{self.limits.max_spans_per_trace} spans or {self.limits.max_bytes_per_trace} "
                            "bytes (--max-spans-per-trace / --max-bytes-per-trace)")
        if spans.num_rows:
            self.writer.write(spans)
        if out_of_window or over_trace:
            self._log_rejections(out_of_window + over_trace, messages[-1])
        return replace(result, spans=spans, rejected=result.rejected + out_of_window + over_trace,
                       message="; ".join(messages))

    def _log_rejections(self, count: int, why: str) -> None:
        """Jaeger and Zipkin have no partial success to tell the sender: at least the log does, at
        most one line every ``_LOG_EVERY_S`` seconds."""
        now = time.monotonic()
        if now - self._last_log >= _LOG_EVERY_S:
            self._last_log = now
            log.warning("ingest: %d spans rejected (%s)", count, why)

    def _in_window(self, spans: pa.Table, now: int) -> tuple[pa.Table, int]:
        if spans.num_rows == 0:
            return spans, 0
        start = spans.column("start_time_unix_nano")
        age, future = self.limits.max_span_age_ns, self.limits.max_span_future_ns
        # Never negative, whatever the window: that is a start past 2262 (see otlp_json.BEYOND_INT64).
        ok = pc.and_(pc.greater_equal(start, now - age if age else 0),
                     pc.less_equal(start, now + future) if future else pc.greater_equal(start, 0))
        if pc.all(ok).as_py():
            return spans, 0  # the common case: no copy
        kept = spans.filter(ok)
        return kept, spans.num_rows - kept.num_rows


def clamp_negative_durations(spans: pa.Table) -> pa.Table:
    """End before start: end := start, duration 0, and a warning saying so on the span."""
    if spans.num_rows == 0:
        return spans
    bad = pc.less(spans.column("end_time_unix_nano"), spans.column("start_time_unix_nano"))
    if not pc.any(bad).as_py():
        return spans
    rows = spans.filter(bad).to_pylist()
    for row in rows:
        warning = (f"negative duration: end time {row['end_time_unix_nano']} is before start time "
                   f"{row['start_time_unix_nano']}; clamped to 0 at ingest")
        row["end_time_unix_nano"] = row["start_time_unix_nano"]
        row["duration_nano"] = 0
        row["span_attributes"] = [*row["span_attributes"], attr(WARNINGS_KEY, [warning])]
    fixed = pa.Table.from_pylist(rows, schema=spans.schema)
    return pa.concat_tables([spans.filter(pc.invert(bad)), fixed])


class TraceBudget:
    """Spans and bytes stored per (scope, trace), for the most recently written traces (LRU)."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._used: OrderedDict[tuple[str, bytes], tuple[int, int]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, spans: pa.Table, limits: IngestLimits, scope: str = "") -> tuple[pa.Table, int]:
        if spans.num_rows == 0:
            return spans, 0
        bytes_per_span = max(1, spans.nbytes // spans.num_rows)
        counts = pc.value_counts(spans.column("trace_id")).to_pylist()
        allowed: dict[bytes, int] = {}
        with self._lock:
            for item in counts:
                trace, n = item["values"], item["counts"]
                used_spans, used_bytes = self._used.pop((scope, trace), (0, 0))
                room = min(limits.max_spans_per_trace - used_spans,
                           (limits.max_bytes_per_trace - used_bytes) // bytes_per_span)
                take = max(0, min(n, room))
                if take < n:
                    allowed[trace] = take
                self._used[(scope, trace)] = (used_spans + take, used_bytes + take * bytes_per_span)
            while len(self._used) > self._capacity:
                self._used.popitem(last=False)
        if not allowed:
            return spans, 0
        return _keep_first(spans, allowed)


def _keep_first(spans: pa.Table, allowed: dict[bytes, int]) -> tuple[pa.Table, int]:
    """Keep only the first ``allowed[t]`` spans of each listed trace ``t``."""
    keep = [True] * spans.num_rows
    seen: dict[bytes, int] = {}
    trace_ids = spans.column("trace_id")
    over = pc.is_in(trace_ids, value_set=pa.array(list(allowed), pa.binary(16)))
    for i in pc.indices_nonzero(over).to_pylist():
        trace = trace_ids[i].as_py()
        seen[trace] = seen.get(trace, 0) + 1
        keep[i] = seen[trace] <= allowed[trace]
    kept = spans.filter(pa.array(keep))
    return kept, spans.num_rows - kept.num_rows


__all__ = ["Admission", "IngestLimits", "TooManySpans", "TraceBudget", "clamp_negative_durations"]
