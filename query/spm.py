"""Service Performance Monitoring: Jaeger's ``/api/metrics/{latencies,calls,errors}`` computed from
stored spans, so the Jaeger UI Monitor tab works with no Prometheus or span-metrics connector.

Jaeger answers these from a Prometheus ``query_range``: one point every ``step`` from ``endTs -
lookback`` to ``endTs``, each aggregating the ``ratePer`` window that ends at it. The same windows are
computed here with numpy over the spans ``SpanReader.scan_spans`` returns. Latencies are exact
quantiles (Prometheus interpolates within histogram buckets) in milliseconds; calls are per second;
errors are the fraction of calls with status ERROR. A window with no spans has no latency or error
point (Prometheus returns no sample there) and a call rate of 0.

The response is the proto-JSON ``MetricFamily`` (jaeger ``api_v2/metrics/openmetrics.proto``), not the
v1 envelope; jaeger-ui reads ``metrics[].labels`` and ``metrics[].metricPoints[].gaugeValue.doubleValue``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import QueryParams

from spanlake.query.errors import NotFound, guarded_routes
from spanlake.query.jaeger_api import error_response
from spanlake.query.params import NS_PER_MS, ParamError, parse_bool, parse_float, parse_int
from spanlake.storage.api import SpanReader
from spanlake.storage.schema import SPAN_KIND_BY_NAME, STATUS_ERROR

Json = dict[str, Any]

DEFAULT_LOOKBACK_MS = 3600 * 1000
DEFAULT_STEP_MS = 5 * 1000
DEFAULT_RATE_PER_MS = 10 * 60 * 1000
MAX_EXACT_QUANTILE = 20_000
MAX_POINTS = 11_000  # Prometheus' limit per series, which Jaeger's SPM inherits
_COLUMNS = ["service_name", "name", "kind", "start_time_unix_nano", "duration_nano", "status_code"]


@dataclass(frozen=True)
class MetricsQuery:
    services: list[str]
    group_by_operation: bool
    span_kinds: list[int]
    end_ms: int
    lookback_ms: int
    step_ms: int
    rate_per_ms: int
    quantile: float = 0.0

    def times_ms(self) -> np.ndarray[Any, np.dtype[np.int64]]:
        """The evaluation timestamps: ``endTs - lookback`` to ``endTs`` every ``step``."""
        start = self.end_ms - self.lookback_ms
        return np.arange(start, self.end_ms + 1, self.step_ms, dtype=np.int64)


def parse_metrics_query(params: QueryParams, now_ms: int, with_quantile: bool) -> MetricsQuery:
    """Jaeger's ``parseMetricsQueryParams``."""
    services = [s for s in params.getlist("service") if s]
    if not services:
        raise ParamError("please provide at least one service name")
    query = MetricsQuery(
        services=services,
        group_by_operation=_opt(params, "groupByOperation", parse_bool, False),
        span_kinds=_span_kinds(params),
        end_ms=_opt(params, "endTs", parse_int, now_ms),
        lookback_ms=_opt(params, "lookback", parse_int, DEFAULT_LOOKBACK_MS),
        step_ms=_opt(params, "step", parse_int, DEFAULT_STEP_MS),
        rate_per_ms=_opt(params, "ratePer", parse_int, DEFAULT_RATE_PER_MS),
        quantile=_opt(params, "quantile", parse_float, 0.0) if with_quantile else 0.0,
    )
    if with_quantile and not 0 < query.quantile <= 1:
        raise ParamError("please provide a quantile between (0, 1]")
    for name, value in (("lookback", query.lookback_ms), ("step", query.step_ms),
                        ("ratePer", query.rate_per_ms)):
        if value <= 0:
            raise ParamError(f"unable to parse param '{name}': must be a positive number of milliseconds")
    if query.lookback_ms // query.step_ms + 1 > MAX_POINTS:
        raise ParamError(f"exceeded maximum resolution of {MAX_POINTS} points per timeseries; "
                         "increase 'step' or reduce 'lookback'")
    return query


def _opt(params: QueryParams, name: str, parse: Callable[[str, str], Any], default: Any) -> Any:
    text = params.get(name)
    return parse(name, text) if text else default


def _span_kinds(params: QueryParams) -> list[int]:
    kinds = []
    for text in params.getlist("spanKind") or ["server"]:
        # The UI sends "server"; Jaeger's own form is the enum name "SPAN_KIND_SERVER".
        name = text.lower().removeprefix("span_kind_")
        if name not in SPAN_KIND_BY_NAME or not name:
            raise ParamError(f"unsupported span kind: '{text}'")
        kinds.append(SPAN_KIND_BY_NAME[name])
    return kinds


def _scan(reader: SpanReader, query: MetricsQuery) -> pa.Table:
    first_window_start_ms = query.end_ms - query.lookback_ms - query.rate_per_ms
    table = reader.scan_spans(_COLUMNS, first_window_start_ms * NS_PER_MS, query.end_ms * NS_PER_MS,
                              query.services)
    mask = pc.is_in(table["kind"], value_set=pa.array(query.span_kinds, pa.int8()))
    return table.filter(mask)


def _groups(table: pa.Table, by_operation: bool) -> dict[tuple[str, ...], pa.Table]:
    keys = ["service_name", "name"] if by_operation else ["service_name"]
    combos = table.group_by(keys).aggregate([]).to_pylist()
    groups = {}
    for combo in sorted(combos, key=lambda c: tuple(c[k] for k in keys)):
        mask = None
        for k in keys:
            part = pc.equal(table[k], combo[k])
            mask = part if mask is None else pc.and_(mask, part)
        groups[tuple(combo[k] for k in keys)] = table.filter(mask).sort_by("start_time_unix_nano")
    return groups


Series = Callable[[pa.Table, MetricsQuery], list[tuple[int, float]]]


def _windows(spans: pa.Table, query: MetricsQuery) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any],
                                                            np.ndarray[Any, Any]]:
    """Per evaluation time, the [lo, hi) row range of spans starting in (t - ratePer, t]."""
    starts = spans["start_time_unix_nano"].to_numpy()
    times = query.times_ms()
    hi = np.searchsorted(starts, times * NS_PER_MS, side="right")
    lo = np.searchsorted(starts, (times - query.rate_per_ms) * NS_PER_MS, side="right")
    return times, lo, hi


def latency_points(spans: pa.Table, query: MetricsQuery) -> list[tuple[int, float]]:
    durations_ms = spans["duration_nano"].to_numpy() / NS_PER_MS
    times, lo, hi = _windows(spans, query)
    return [(int(t), _quantile(durations_ms[a:b], query.quantile))
            for t, a, b in zip(times, lo, hi, strict=True) if b > a]


def _quantile(values: np.ndarray[Any, Any], q: float) -> float:
    """Exact up to ``MAX_EXACT_QUANTILE`` spans per window, beyond that estimated from an even
    stride of them: every point of a busy service would otherwise partition a whole ``ratePer``
    window of spans (721 points per default request). The estimate's error at 20,000 samples is
    well under the bucket interpolation error of the Prometheus histograms Jaeger reads."""
    if len(values) > MAX_EXACT_QUANTILE:
        values = values[:: len(values) // MAX_EXACT_QUANTILE + 1]
    # np.quantile's default (linear interpolation) from one partition: a fraction of its overhead,
    # which dominates for the many small windows of a request.
    rank = q * (len(values) - 1)
    low = int(rank)
    high = min(low + 1, len(values) - 1)
    part = np.partition(values, [low, high]) if high != low else np.partition(values, low)
    return float(part[low] + (part[high] - part[low]) * (rank - low))


def call_points(spans: pa.Table, query: MetricsQuery) -> list[tuple[int, float]]:
    times, lo, hi = _windows(spans, query)
    per_second = query.rate_per_ms / 1000
    return [(int(t), float(b - a) / per_second) for t, a, b in zip(times, lo, hi, strict=True)]


def error_points(spans: pa.Table, query: MetricsQuery) -> list[tuple[int, float]]:
    errors = np.concatenate([[0], np.cumsum(spans["status_code"].to_numpy() == STATUS_ERROR)])
    times, lo, hi = _windows(spans, query)
    return [(int(t), float(errors[b] - errors[a]) / float(b - a))
            for t, a, b in zip(times, lo, hi, strict=True) if b > a]


def metric_family(name: str, help_text: str, groups: dict[tuple[str, ...], pa.Table],
                  query: MetricsQuery, series: Series) -> Json:
    metrics = []
    for key, spans in groups.items():
        points = series(spans, query)
        if not points:
            continue
        # Prometheus sorts labels by name, so "operation" precedes "service_name"; the UI reads
        # labels[0] as the service when not grouping by operation.
        labels = [{"name": "service_name", "value": key[0]}]
        if len(key) > 1:
            labels.insert(0, {"name": "operation", "value": key[1]})
        metrics.append({"labels": labels, "metricPoints": [
            {"gaugeValue": {"doubleValue": value}, "timestamp": proto_timestamp(t)} for t, value in points
        ]})
    return {"name": name, "type": "GAUGE", "help": help_text, "metrics": metrics}


def proto_timestamp(ms: int) -> str:
    """A ``google.protobuf.Timestamp`` in proto-JSON: RFC 3339, UTC, fraction only when non-zero."""
    moment = datetime.fromtimestamp(ms // 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{moment}.{ms % 1000:03d}Z" if ms % 1000 else f"{moment}Z"


def _scope(query: MetricsQuery) -> tuple[str, str]:
    """The metric name infix and help suffix for the grouping."""
    if query.group_by_operation:
        return "service_operation", "grouped by service & operation"
    return "service", "grouped by service"


def latencies(reader: SpanReader, query: MetricsQuery) -> Json:
    infix, grouped = _scope(query)
    return metric_family(f"{infix}_latencies", f"{query.quantile}th quantile latency, {grouped}",
                         _groups(_scan(reader, query), query.group_by_operation), query, latency_points)


def calls(reader: SpanReader, query: MetricsQuery) -> Json:
    infix, grouped = _scope(query)
    return metric_family(f"{infix}_call_rate", f"calls/sec, {grouped}",
                         _groups(_scan(reader, query), query.group_by_operation), query, call_points)


def errors(reader: SpanReader, query: MetricsQuery) -> Json:
    infix, grouped = _scope(query)
    return metric_family(f"{infix}_error_rate",
                         f"error rate, computed as a fraction of errors/sec over calls/sec, {grouped}",
                         _groups(_scan(reader, query), query.group_by_operation), query, error_points)


def router(reader: SpanReader) -> APIRouter:
    api = APIRouter(route_class=guarded_routes(error_response))
    routes: dict[str, tuple[Callable[[SpanReader, MetricsQuery], Json], bool]] = {
        "latencies": (latencies, True),
        "calls": (calls, False),
        "errors": (errors, False),
    }

    @api.get("/api/metrics/{metric}")
    def metrics(metric: str, request: Request) -> Response:
        if metric not in routes:
            raise NotFound(f"unknown metric {metric!r}: expected latencies, calls or errors")
        compute, with_quantile = routes[metric]
        query = parse_metrics_query(request.query_params, time.time_ns() // NS_PER_MS, with_quantile)
        return JSONResponse(compute(reader, query))

    return api
