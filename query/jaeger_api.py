"""Jaeger's v1 "internal" JSON query API on 16686, with v2.20 semantics
(jaeger ``cmd/query/app/http_handler.go`` and ``internal/uimodel``).

Grafana's Jaeger datasource and Jaeger UI up to v1.76 call these routes. Every response is Jaeger's
``structuredResponse`` envelope; errors are the same envelope written by Go's ``http.Error``, hence the
``text/plain`` content type on a JSON body, which both clients parse regardless.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any

import anyio
import orjson
import pyarrow as pa
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import QueryParams

from spanlake.query.adjusters import adjust
from spanlake.query.errors import ApiError, BadRequest, NotFound, PayloadTooLarge, guarded_routes
from spanlake.query.formats.columns import gc_paused
from spanlake.query.formats.jaeger_json import spans_to_jaeger_traces
from spanlake.query.ids import format_trace_id, parse_trace_id
from spanlake.query.limits import QueryLimits, partial_traces, partial_warning
from spanlake.query.params import (
    NS_PER_MS,
    NS_PER_US,
    ParamError,
    epoch_hint_to_ns,
    parse_bool,
    parse_go_duration,
    parse_int,
    parse_string_map,
)
from spanlake.storage.api import SpanReader, TraceQuery
from spanlake.storage.schema import SPAN_KIND_BY_NAME, SPAN_KIND_NAMES

Json = dict[str, Any]

DEFAULT_LIMIT = 100
MAX_TRANSFORM_BYTES = 16 * 1024 * 1024  # as --max-request-bytes' default
DEFAULT_LOOKBACK_NS = 48 * 3600 * 10**9  # defaultTraceQueryLookbackDuration
DEFAULT_DEPENDENCIES_LOOKBACK_MS = 24 * 3600 * 1000
NOT_FOUND = "trace not found"


def envelope(data: Any, total: int = 0, errors: list[Json] | None = None) -> Json:
    return {"data": data, "total": total, "limit": 0, "offset": 0, "errors": errors}


def json_response(body: Json, params: QueryParams, status: int = 200) -> Response:
    try:  # Jaeger ignores an unparsable prettyPrint
        pretty = parse_bool("prettyPrint", params.get("prettyPrint") or "false")
    except ParamError:
        pretty = False
    return Response(encode_json(body, pretty), status_code=status, media_type="application/json")


def encode_json(body: Any, pretty: bool = False) -> bytes:
    """The response body: compact JSON, or indented by 4 for ``prettyPrint``.

    Compact JSON is written by orjson (a 100,000-span trace: ~0.15 s, ``json`` ~1.2 s; see
    ``bench/trace_path.py``); it writes UTF-8 where ``json`` escapes to ASCII, the same JSON either way.
    orjson indents by 2 only, so ``prettyPrint`` (rare, for people reading the text) stays on ``json``.
    """
    if not pretty:
        try:
            return orjson.dumps(body)
        except orjson.JSONEncodeError:  # what orjson refuses (an int past 64 bits) json still writes
            pass
    text = json.dumps(body, indent=4 if pretty else None, separators=None if pretty else (",", ":"))
    return text.encode()


def error_response(error: ApiError) -> Response:
    """Jaeger's error envelope, as Go's ``http.Error`` sends it: text/plain, nosniff, a trailing newline."""
    body = json.dumps(envelope(None, errors=[{"code": error.status, "msg": error.message}]),
                      separators=(",", ":"))
    return Response(body + "\n", status_code=error.status, media_type="text/plain; charset=utf-8",
                    headers={"X-Content-Type-Options": "nosniff", **error.headers})


def handle(request: Request, compute: Callable[[], Json]) -> Response:
    """Run ``compute`` (blocking reader calls; called from FastAPI's thread pool) and shape the answer.
    Errors it raises are answered by ``error_response`` through the router's route class.

    The cyclic GC is paused until the answer is encoded and its objects freed: a huge trace is a
    million short-lived dicts and lists, and a collection started mid-way would walk them all (freed
    objects leave the GC's count, so none is due once they are gone)."""
    with gc_paused():
        return json_response(compute(), request.query_params)


def parse_search(params: QueryParams, now_ns: int) -> TraceQuery:
    """``/api/traces`` search parameters (Jaeger's ``parseTraceQueryParams``) as a ``TraceQuery``."""
    end_ns = _micros(params, "end", now_ns)
    start_ns = _micros(params, "start", end_ns - DEFAULT_LOOKBACK_NS)
    min_d = _duration(params, "minDuration")
    max_d = _duration(params, "maxDuration")
    if min_d is not None and max_d is not None and max_d < min_d:
        raise ParamError("'maxDuration' should be greater than 'minDuration'")
    limit = parse_int("limit", params["limit"]) if params.get("limit") else 0
    return TraceQuery(
        service_name=params.get("service") or None,
        operation_name=params.get("operation") or None,
        attributes=_tags(params),
        start_time_min_ns=start_ns,
        start_time_max_ns=end_ns,
        duration_min_ns=min_d,
        duration_max_ns=max_d,
        search_depth=limit if limit > 0 else DEFAULT_LIMIT,
    )


def _micros(params: QueryParams, name: str, default_ns: int) -> int:
    text = params.get(name)
    return parse_int(name, text) * NS_PER_US if text else default_ns


def _duration(params: QueryParams, name: str) -> int | None:
    text = params.get(name)
    if not text:
        return None
    try:
        return parse_go_duration(text)
    except ParamError as exc:
        raise ParamError(f"unable to parse param '{name}': {exc}") from None


def _tags(params: QueryParams) -> dict[str, str]:
    tags: dict[str, str] = {}
    for text in params.getlist("tags"):  # several JSON maps are merged
        tags.update(parse_string_map("tags", text))
    for pair in params.getlist("tag"):  # legacy key:value form; the value may itself contain ':'
        key, sep, value = pair.partition(":")
        if not sep:
            raise ParamError(f"malformed 'tag' parameter, expecting key:value, received: {pair}")
        tags[key] = value
    return tags


def load_traces(reader: SpanReader, ids: Sequence[bytes], raw: bool,
                start_ns: int | None = None, end_ns: int | None = None) -> list[Json]:
    """The Jaeger traces of ``ids`` in that order (missing ones left out).

    Without ``raw`` Jaeger's query-time adjusters run first (``query/adjusters.py``).
    """
    if not ids:
        return []
    table = reader.get_traces(list(ids), start_ns, end_ns)
    partial = partial_traces(table)
    if not raw:
        table = adjust(table)
    by_id = {t["traceID"]: t for t in spans_to_jaeger_traces(table)}
    limits = getattr(reader, "limits", QueryLimits())
    for trace_hex, total in partial.items():  # cut to the per-trace limit: say so, as Tempo does
        trace = by_id.get(format_trace_id(bytes.fromhex(trace_hex)))
        if trace is not None:
            trace["warnings"] = [*(trace["warnings"] or []), partial_warning(limits, total)]
    wanted = (format_trace_id(i) for i in ids)
    return [by_id[key] for key in dict.fromkeys(wanted) if key in by_id]


def _trace_hints(params: QueryParams) -> tuple[int | None, int | None]:
    start = params.get("start")
    end = params.get("end")
    return (epoch_hint_to_ns("start", start) if start else None,
            epoch_hint_to_ns("end", end) if end else None)


def _raw(params: QueryParams) -> bool:
    text = params.get("raw")
    return parse_bool("raw", text) if text else False


def router(reader: SpanReader, decode_otlp_json: Callable[[bytes], pa.Table]) -> APIRouter:
    """The v1 routes. ``decode_otlp_json`` (OTLP/JSON bytes -> spans) is injected because ``query`` may
    not import ``collector``; it raises ``ValueError`` (``FormatError``) on undecodable input."""
    api = APIRouter(route_class=guarded_routes(error_response))

    @api.get("/api/services")
    def services(request: Request) -> Response:
        def compute() -> Json:
            names = reader.get_services()
            return envelope(names, total=len(names))
        return handle(request, compute)

    @api.get("/api/services/{service:path}/operations")
    def service_operations(service: str, request: Request) -> Response:
        def compute() -> Json:
            names = list(dict.fromkeys(op.name for op in reader.get_operations(service)))
            return envelope(names, total=len(names))
        return handle(request, compute)

    @api.get("/api/operations")
    def operations(request: Request) -> Response:
        return handle(request, lambda: _operations(reader, request.query_params))

    @api.get("/api/traces")
    def search(request: Request) -> Response:
        def compute() -> Json:
            params = request.query_params
            raw = _raw(params)
            if params.getlist("traceID"):
                return _by_ids(reader, params, raw)
            query = parse_search(params, time.time_ns())
            ids = reader.find_trace_ids(query)
            return envelope(load_traces(reader, ids, raw, query.start_time_min_ns, query.start_time_max_ns))
        return handle(request, compute)

    @api.get("/api/traces/{trace_id}")
    def trace(trace_id: str, request: Request) -> Response:
        def compute() -> Json:
            return envelope(_one_trace(reader, trace_id, request.query_params))
        return handle(request, compute)

    @api.post("/api/archive/{trace_id}")
    def archive(trace_id: str, request: Request) -> Response:
        def compute() -> Json:
            _one_trace(reader, trace_id, request.query_params)
            # Segments are immutable and kept until retention drops them; there is no separate
            # archive store to copy into, so a found trace is acknowledged as Jaeger does.
            return envelope([], errors=[])
        return handle(request, compute)

    @api.get("/api/dependencies")
    def dependencies(request: Request) -> Response:
        return handle(request, lambda: _dependencies(reader, request.query_params))

    @api.post("/api/transform")
    async def transform(request: Request) -> Response:
        chunks, size = [], 0
        async for chunk in request.stream():  # capped: a body is held in memory and parsed
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_TRANSFORM_BYTES:
                raise PayloadTooLarge(f"request body exceeds the limit of {MAX_TRANSFORM_BYTES} bytes")
        body = b"".join(chunks)

        def compute() -> Json:
            try:
                spans = decode_otlp_json(body)
            except ValueError as exc:
                raise BadRequest(f"cannot parse OTLP JSON: {exc}") from None
            return envelope(spans_to_jaeger_traces(spans))
        return await anyio.to_thread.run_sync(handle, request, compute)

    return api


def _operations(reader: SpanReader, params: QueryParams) -> Json:
    service = params.get("service")
    if not service:
        raise ParamError("parameter 'service' is required")
    kind_name = params.get("spanKind", "")
    if kind_name and kind_name not in SPAN_KIND_BY_NAME:
        return envelope([], total=0)  # Jaeger passes the kind to storage, which matches nothing
    ops = reader.get_operations(service, SPAN_KIND_BY_NAME[kind_name] if kind_name else None)
    data = [{"name": op.name, "spanKind": SPAN_KIND_NAMES.get(op.span_kind, "")} for op in ops]
    return envelope(data, total=len(data))


def _one_trace(reader: SpanReader, text: str, params: QueryParams) -> list[Json]:
    trace_id = parse_trace_id(text)
    start, end = _trace_hints(params)
    traces = load_traces(reader, [trace_id], _raw(params), start, end)
    if not traces:
        raise NotFound(NOT_FOUND)
    return traces


def _by_ids(reader: SpanReader, params: QueryParams, raw: bool) -> Json:
    ids = [parse_trace_id(text) for text in params.getlist("traceID")]
    start, end = _trace_hints(params)
    traces = load_traces(reader, ids, raw, start, end)
    found = {t["traceID"] for t in traces}
    missing = [{"msg": NOT_FOUND, "traceID": format_trace_id(i)} for i in ids
               if format_trace_id(i) not in found]
    return envelope(traces, errors=missing or None)


def _dependencies(reader: SpanReader, params: QueryParams) -> Json:
    end_text, lookback_text = params.get("endTs"), params.get("lookback")
    end_ms = parse_int("endTs", end_text) if end_text else time.time_ns() // NS_PER_MS
    lookback_ms = parse_int("lookback", lookback_text) if lookback_text else DEFAULT_DEPENDENCIES_LOOKBACK_MS
    service = params.get("service")
    counts: dict[tuple[str, str], int] = {}
    for link in reader.get_dependencies(end_ms * NS_PER_MS, lookback_ms * NS_PER_MS):
        if service and service not in (link.parent, link.child):
            continue
        key = (link.parent, link.child)
        counts[key] = counts.get(key, 0) + link.call_count
    data = [{"parent": p, "child": c, "callCount": n} for (p, c), n in counts.items()]
    return envelope(data)
