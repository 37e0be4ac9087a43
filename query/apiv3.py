"""Jaeger api_v3 over HTTP (the grpc-gateway routes on 16686; jaeger-idl ``proto/api_v3``).

Responses are proto-JSON: traces are OTLP/JSON inside ``{"result": ...}``, errors are
``{"error": {"httpCode": ..., "message": ...}}``. Parameter names are accepted in both the camelCase
spelling (canonical since v2.20, sent by current Jaeger UI) and the snake_case spelling (sent by
Grafana's api_v3 client, with RFC 3339 values not URL-encoded).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import QueryParams

from spanlake.query.adjusters import deduplicate_client_server_span_ids
from spanlake.query.errors import ApiError, NotFound, guarded_routes
from spanlake.query.formats.otlp import spans_to_otlp_json
from spanlake.query.ids import parse_trace_id
from spanlake.query.params import (
    ParamError,
    parse_bool,
    parse_go_duration,
    parse_int,
    parse_rfc3339_nano,
    parse_string_map,
)
from spanlake.storage.api import SpanReader, TraceQuery
from spanlake.storage.schema import SPAN_KIND_BY_NAME, SPAN_KIND_NAMES, STATUS_ERROR

Json = dict[str, Any]

DEFAULT_SEARCH_DEPTH = 100
NO_TRACES = "No traces found"


def error_response(error: ApiError) -> Response:
    return JSONResponse({"error": {"httpCode": error.status, "message": error.message}},
                        status_code=error.status, headers=error.headers)


def handle(request: Request, compute: Callable[[], Json]) -> Response:
    return JSONResponse(compute())


def param(params: QueryParams, *names: str) -> str | None:
    """The first non-empty value among a parameter's spellings."""
    for name in names:
        value = params.get(name)
        if value:
            return value
    return None


def _time(params: QueryParams, camel: str, snake: str) -> int | None:
    text = param(params, camel, snake)
    if text is None:
        return None
    try:
        return parse_rfc3339_nano(text)
    except ParamError as exc:
        raise ParamError(f"malformed parameter {camel}: {exc}") from None


def _required_time(params: QueryParams, camel: str, snake: str) -> int:
    value = _time(params, camel, snake)
    if value is None:
        raise ParamError(f"malformed parameter {camel}: parameter is required (RFC3339Nano)")
    return value


def _duration(params: QueryParams, camel: str, snake: str) -> int | None:
    text = param(params, camel, snake)
    if text is None:
        return None
    try:
        return parse_go_duration(text)
    except ParamError as exc:
        raise ParamError(f"malformed parameter {camel}: {exc}") from None


def raw_traces(params: QueryParams, *names: str) -> bool:
    text = param(params, *names)
    return parse_bool(names[0], text) if text else False


def parse_query(params: QueryParams) -> TraceQuery:
    """``query.*`` parameters of ``/api/v3/traces`` and ``/api/v3/trace-summaries``."""
    start_min = _required_time(params, "query.startTimeMin", "query.start_time_min")
    start_max = _required_time(params, "query.startTimeMax", "query.start_time_max")
    if start_max < start_min:
        raise ParamError("query.startTimeMax must not be before query.startTimeMin")
    min_d = _duration(params, "query.durationMin", "query.duration_min")
    max_d = _duration(params, "query.durationMax", "query.duration_max")
    if min_d is not None and max_d is not None and max_d < min_d:
        raise ParamError("query.durationMax must not be less than query.durationMin")
    attributes = param(params, "query.attributes")
    depth_text = param(params, "query.searchDepth", "query.search_depth", "query.num_traces")
    depth = parse_int("query.searchDepth", depth_text) if depth_text else DEFAULT_SEARCH_DEPTH
    if depth <= 0:
        raise ParamError(f"malformed parameter query.searchDepth: must be positive, got {depth}")
    return TraceQuery(
        service_name=param(params, "query.serviceName", "query.service_name"),
        operation_name=param(params, "query.operationName", "query.operation_name"),
        attributes=parse_string_map("query.attributes", attributes) if attributes else {},
        start_time_min_ns=start_min,
        start_time_max_ns=start_max,
        duration_min_ns=min_d,
        duration_max_ns=max_d,
        search_depth=depth,
    )


def ordered(table: pa.Table, ids: list[bytes], raw: bool) -> pa.Table:
    """Spans grouped by trace in ``ids`` order (most recent first); unless ``raw``, adjusted
    (``query/adjusters.py``) and by start time within a trace."""
    if not raw:
        table = deduplicate_client_server_span_ids(table)
    rank = pc.index_in(table["trace_id"], value_set=pa.array(ids, pa.binary(16)))
    keys = [("__rank", "ascending")] + ([] if raw else [("start_time_unix_nano", "ascending")])
    return table.append_column("__rank", rank).sort_by(keys).drop_columns(["__rank"])


def search(reader: SpanReader, params: QueryParams) -> tuple[pa.Table, list[bytes]]:
    query = parse_query(params)
    ids = reader.find_trace_ids(query)
    if not ids:
        raise NotFound(NO_TRACES)
    table = reader.get_traces(ids, query.start_time_min_ns, query.start_time_max_ns)
    if table.num_rows == 0:
        raise NotFound(NO_TRACES)
    return ordered(table, ids, raw_traces(params, "query.rawTraces", "query.raw_traces")), ids


def trace_summaries(table: pa.Table, ids: list[bytes]) -> list[Json]:
    """One ``TraceSummary`` per trace (api_v3 ``FindTraceSummaries``), proto-JSON: zero values left
    out, 64-bit times as strings."""
    columns = ["trace_id", "span_id", "parent_span_id", "service_name", "name",
               "start_time_unix_nano", "end_time_unix_nano", "status_code"]
    by_trace: dict[bytes, list[Json]] = {}
    for row in table.select(columns).to_pylist():
        by_trace.setdefault(row["trace_id"], []).append(row)
    return [_summary(trace_id, by_trace[trace_id]) for trace_id in ids if trace_id in by_trace]


def _summary(trace_id: bytes, rows: list[Json]) -> Json:
    span_ids = {r["span_id"] for r in rows}
    roots = [r for r in rows if r["parent_span_id"] in (None, bytes(8))]
    orphans = sum(1 for r in rows if r["parent_span_id"] not in (None, bytes(8)) and
                  r["parent_span_id"] not in span_ids)
    services: dict[str, list[int]] = {}
    for r in rows:
        counts = services.setdefault(r["service_name"], [0, 0])
        counts[0] += 1
        counts[1] += r["status_code"] == STATUS_ERROR
    summary: Json = {"traceId": trace_id.hex()}
    if roots:
        root = min(roots, key=lambda r: r["start_time_unix_nano"])
        summary.update(rootServiceName=root["service_name"], rootOperationName=root["name"])
    summary.update(
        minStartTimeUnixNano=str(min(r["start_time_unix_nano"] for r in rows)),
        maxEndTimeUnixNano=str(max(r["end_time_unix_nano"] for r in rows)),
        spanCount=len(rows),
        errorSpanCount=sum(counts[1] for counts in services.values()),
        orphanSpanCount=orphans,
        services=[_nonzero({"name": name, "spanCount": n, "errorSpanCount": e})
                  for name, (n, e) in sorted(services.items())],
    )
    return _nonzero(summary)


def _nonzero(obj: Json) -> Json:
    return {k: v for k, v in obj.items() if v not in (0, "", None)}


def router(reader: SpanReader) -> APIRouter:
    api = APIRouter(route_class=guarded_routes(error_response))

    @api.get("/api/v3/services")
    def services(request: Request) -> Response:
        return handle(request, lambda: {"services": reader.get_services()})

    @api.get("/api/v3/operations")
    def operations(request: Request) -> Response:
        def compute() -> Json:
            params = request.query_params
            kind_name = param(params, "spanKind", "span_kind") or ""
            if kind_name and kind_name not in SPAN_KIND_BY_NAME:
                return {"operations": []}
            ops = reader.get_operations(params.get("service", ""),
                                        SPAN_KIND_BY_NAME[kind_name] if kind_name else None)
            # The gateway reports an unspecified kind as "internal" (jaeger ``apiv3`` gateway snapshots).
            return {"operations": [
                {"name": op.name, "spanKind": SPAN_KIND_NAMES.get(op.span_kind) or "internal"} for op in ops
            ]}
        return handle(request, compute)

    @api.get("/api/v3/traces/{trace_id}")
    def trace(trace_id: str, request: Request) -> Response:
        def compute() -> Json:
            params = request.query_params
            tid = parse_trace_id(trace_id)
            start = _time(params, "startTime", "start_time")
            end = _time(params, "endTime", "end_time")
            table = reader.get_traces([tid], start, end)
            if table.num_rows == 0:
                raise NotFound(NO_TRACES)
            raw = raw_traces(params, "rawTraces", "raw_traces")
            return {"result": spans_to_otlp_json(ordered(table, [tid], raw))}
        return handle(request, compute)

    @api.get("/api/v3/traces")
    def find_traces(request: Request) -> Response:
        def compute() -> Json:
            table, _ = search(reader, request.query_params)
            return {"result": spans_to_otlp_json(table)}
        return handle(request, compute)

    @api.get("/api/v3/trace-summaries")
    def find_summaries(request: Request) -> Response:
        def compute() -> Json:
            table, ids = search(reader, request.query_params)
            return {"summaries": trace_summaries(table, ids)}
        return handle(request, compute)

    return api
