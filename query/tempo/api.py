"""Grafana Tempo's HTTP API under ``/tempo`` on the query port (Tempo's ``pkg/api/http.go`` paths).

A Grafana Tempo data source with URL ``http://HOST:16686/tempo`` uses: ``/api/echo`` (Save & test),
``/api/v2/traces/{id}`` then ``/api/traces/{id}`` (protobuf), ``/api/search`` (TraceQL), the tag
routes (autocomplete) and ``/api/metrics/query_range`` / ``query``. Errors are Tempo's: a plain-text
message with 400 for bad input (TraceQL errors carry line and column) and 404 for unknown traces;
handlers raise and ``query/errors.py`` decides the status, ``error_response`` the shape.
"""

from __future__ import annotations

import re
import time
from importlib import metadata
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.datastructures import QueryParams

from spanlake.query.errors import ApiError, BadRequest, NotFound, guarded_routes
from spanlake.query.ids import TraceIDError, parse_trace_id
from spanlake.query.params import ParamError, parse_go_duration
from spanlake.query.tempo import formats
from spanlake.query.traceql.parser import parse
from spanlake.storage.api import SpanReader
from spanlake.storage.traceql import model as m
from spanlake.storage.traceql import tags
from spanlake.storage.traceql.engine import Inspection, TraceQLEngine
from spanlake.storage.traceql.errors import TraceQLError
from spanlake.storage.traceql.metrics import query_range

PREFIX = "/tempo"
PROTOBUF = "application/protobuf"
DEFAULT_LIMIT, MAX_LIMIT = 20, 10_000
DEFAULT_SPSS = 3
DEFAULT_TAG_LIMIT = 5_000
ALL_TIME = (0, 2**63 - 1)
_SCOPES = (*tags.SCOPES, "intrinsic")
_LOGFMT = re.compile(r'\s*([^\s=]+)=("(?:\\.|[^"\\])*"|\S*)')


def error_response(error: ApiError) -> Response:
    """Tempo's error shape: the message as plain text."""
    return PlainTextResponse(error.message, status_code=error.status, headers=error.headers)


def router(reader: SpanReader, engine: TraceQLEngine, max_trace_spans: int = 100_000) -> APIRouter:
    """Errors the handlers raise are answered by ``error_response`` through the route class."""
    api = APIRouter(prefix=PREFIX, route_class=guarded_routes(error_response))

    @api.get("")
    def index() -> Response:  # the data source URL itself, for a user checking it in a browser
        return PlainTextResponse("spanlake serves Grafana Tempo's HTTP API here: use this URL as a "
                                 "Tempo data source URL (see docs/grafana.md)")

    @api.get("/api/echo")
    def echo() -> Response:
        return PlainTextResponse("echo")

    @api.get("/api/status/buildinfo")
    def buildinfo() -> Response:
        return JSONResponse({"version": _version(), "revision": "", "branch": "", "buildUser": "",
                             "buildDate": "", "goVersion": ""})

    def trace_by_id(trace_id: str, request: Request, v2: bool) -> Response:
        tid = _trace_id(trace_id)
        _window(request.query_params, required=False)  # validated; a hint only: lookups need no range
        spans = reader.get_traces([tid])
        if spans.num_rows == 0:
            raise NotFound(f"trace not found: {tid.hex()}")
        spans, message = formats.truncate(spans, max_trace_spans)
        if PROTOBUF in request.headers.get("accept", ""):
            body = formats.trace_by_id_pb(spans, message) if v2 else formats.trace_pb(spans)
            return Response(body, media_type=PROTOBUF)
        return JSONResponse(formats.trace_by_id_json(spans, message) if v2 else formats.trace_v1_json(spans))

    @api.get("/api/v2/traces/{trace_id}")
    def trace_v2(trace_id: str, request: Request) -> Response:
        return trace_by_id(trace_id, request, v2=True)

    @api.get("/api/traces/{trace_id}")
    def trace_v1(trace_id: str, request: Request) -> Response:
        return trace_by_id(trace_id, request, v2=False)

    @api.get("/api/search")
    def search(request: Request) -> Response:
        params = request.query_params
        query = _search_query(params)
        if query.metrics is not None:
            raise BadRequest("metrics queries go to /api/metrics/query_range")
        lo, hi = _window(params, required=False)
        limit = min(_int(params, "limit", DEFAULT_LIMIT), MAX_LIMIT)
        spss = _int(params, "spss", DEFAULT_SPSS)
        inspection = Inspection()
        matches = engine.search(query, lo, hi, limit, inspection)
        summaries = engine.summaries([t.trace_id for t in matches], lo, hi)
        return JSONResponse(formats.search_json(matches, summaries, spss, inspection.traces))

    @api.get("/api/v2/search/tags")
    def tags_v2(request: Request) -> Response:
        scopes = _scopes(request.query_params)
        lo, hi = _optional_window(request.query_params)
        limit = _int(request.query_params, "limit", DEFAULT_TAG_LIMIT)
        return JSONResponse(formats.tags_v2_json(tags.tag_names(engine.reader, scopes, lo, hi, limit)))

    @api.get("/api/search/tags")
    def tags_v1(request: Request) -> Response:
        lo, hi = _optional_window(request.query_params)
        limit = _int(request.query_params, "limit", DEFAULT_TAG_LIMIT)
        names = tags.tag_names(engine.reader, ["span", "resource"], lo, hi, limit)
        return JSONResponse({"tagNames": sorted({t for ts in names.values() for t in ts})[:limit]})

    def values(tag: str, request: Request, v2: bool) -> list[tuple[str, Any]]:
        params = request.query_params
        lo, hi = _optional_window(params)
        limit = _int(params, "limit", DEFAULT_TAG_LIMIT)
        target = _tag(tag if v2 else _v1_tag(tag))
        return tags.tag_values(engine.reader, target, _co_occurring(params.get("q")), lo, hi, limit)

    @api.get("/api/v2/search/tag/{tag}/values")
    def tag_values_v2(tag: str, request: Request) -> Response:
        return JSONResponse(formats.tag_values_v2_json(values(tag, request, v2=True)))

    @api.get("/api/search/tag/{tag}/values")
    def tag_values_v1(tag: str, request: Request) -> Response:
        return JSONResponse({"tagValues": sorted({formats.tag_values_v2_json([v])["tagValues"][0]["value"]
                                                  for v in values(tag, request, v2=False)})})

    @api.get("/api/metrics/query_range")
    def metrics_range(request: Request) -> Response:
        params = request.query_params
        query, lo, hi = _metrics_query(params)
        step = _step(params, lo, hi)
        exemplars = _int(params, "exemplars", 100)
        inspection = Inspection()
        series = query_range(engine, query, lo, hi, step, exemplars, inspection)
        return JSONResponse(formats.query_range_json(series, _partial(inspection, engine)))

    @api.get("/api/metrics/query")
    def metrics_instant(request: Request) -> Response:
        query, lo, hi = _metrics_query(request.query_params)
        inspection = Inspection()
        series = query_range(engine, query, lo, hi, max(1, hi - lo), 0, inspection)
        return JSONResponse(formats.query_instant_json(series, _partial(inspection, engine)))

    return api


def _partial(inspection: Inspection, engine: TraceQLEngine) -> str:
    if not inspection.truncated:
        return ""
    return (f"partial result: the query needs traces evaluated one by one and stopped after the "
            f"{engine.max_inspected_traces} most recent candidates")


# --- parameters ---------------------------------------------------------------------------------
def _int(params: QueryParams, name: str, default: int) -> int:
    text = params.get(name)
    if text in (None, ""):
        return default
    try:
        value = int(text)
    except ValueError:
        raise BadRequest(f"invalid {name} {text!r}: expected a non-negative integer") from None
    if value < 0:
        raise BadRequest(f"invalid {name} {text!r}: expected a non-negative integer")
    return value or default


def _seconds(params: QueryParams, name: str) -> int | None:
    """``start``/``end``: unix seconds (Grafana), as nanoseconds."""
    text = params.get(name)
    if text in (None, "", "0"):
        return None
    try:
        return int(float(text) * 1e9)
    except ValueError:
        raise BadRequest(f"invalid {name} {text!r}: expected unix epoch seconds") from None


def _optional_window(params: QueryParams) -> tuple[int | None, int | None]:
    return _seconds(params, "start"), _seconds(params, "end")


def _window(params: QueryParams, required: bool) -> tuple[int, int]:
    lo, hi = _optional_window(params)
    if required and (lo is None or hi is None):
        raise BadRequest("start and end (unix seconds) are required")
    lo = ALL_TIME[0] if lo is None else lo
    hi = ALL_TIME[1] if hi is None else hi
    if hi < lo:
        raise BadRequest("invalid time range: end is before start")
    return lo, hi


def _trace_id(text: str) -> bytes:
    if not re.fullmatch(r"[0-9a-fA-F]{1,32}", text):
        raise TraceIDError(f"invalid trace ID {text!r}: expected 1-32 hex characters")
    return parse_trace_id(text)


def _search_query(params: QueryParams) -> m.Query:
    q = params.get("q")
    if q:
        return parse(q)
    return m.Query(m.Pipeline((legacy_filter(params),)))


def legacy_filter(params: QueryParams) -> m.SpansetFilter:
    """Tempo's pre-TraceQL search: ``tags`` (logfmt), ``minDuration``, ``maxDuration``."""
    conds: list[m.FieldExpr] = []
    for key, raw in _LOGFMT.findall(params.get("tags") or ""):
        value = raw[1:-1].replace('\\"', '"') if raw.startswith('"') else raw
        conds.append(_legacy_tag(key, value))
    for name, op in (("minDuration", ">="), ("maxDuration", "<=")):
        text = params.get(name)
        if text:
            limit = m.Static("duration", parse_go_duration(text))
            conds.append(m.BinaryOp(op, m.Intrinsic("duration"), limit))
    return m.SpansetFilter(m.all_of(conds))


def _legacy_tag(key: str, value: str) -> m.FieldExpr:
    if key in ("name", "status.code", "status"):
        if key == "name":
            return m.BinaryOp("=", m.Intrinsic("name"), m.Static("string", value))
        if value not in ("ok", "error", "unset"):
            raise BadRequest(f"invalid status {value!r}: expected ok, error or unset")
        return m.BinaryOp("=", m.Intrinsic("status"), m.Static("status", value))
    attr = m.Attribute("", key)
    cond: m.FieldExpr = m.BinaryOp("=", attr, m.Static("string", value))
    for typed in _typed_literals(value):
        cond = m.BinaryOp("||", cond, m.BinaryOp("=", attr, typed))
    return cond


def _typed_literals(value: str) -> list[m.Static]:
    """Legacy tag values compare as text or as the number / bool the text spells."""
    if value in ("true", "false"):
        return [m.Static("bool", value == "true")]
    try:
        return [m.Static("int", int(value))]
    except ValueError:
        pass
    try:
        return [m.Static("float", float(value))]
    except ValueError:
        return []


def _scopes(params: QueryParams) -> list[str]:
    scope = params.get("scope")
    if not scope or scope == "all":
        return list(_SCOPES)
    if scope not in _SCOPES:
        raise BadRequest(f"invalid scope {scope!r}: expected one of {', '.join(_SCOPES)} or all")
    return [scope]


def _tag(text: str) -> m.Attribute | m.Intrinsic:
    """A scoped TraceQL identifier (``resource.service.name``, ``.foo``, ``status``)."""
    try:
        query = parse("{" + text + " != nil}") if "." in text else None
    except TraceQLError:
        query = None
    if query is not None:
        stage = query.pipeline.stages[0]
        if isinstance(stage, m.SpansetFilter) and isinstance(stage.expr, m.BinaryOp) \
                and isinstance(stage.expr.lhs, m.Attribute):
            return stage.expr.lhs
    try:
        query = parse("{" + text + " = nil}")
    except TraceQLError:
        raise BadRequest(f"invalid tag {text!r}: expected a TraceQL attribute or intrinsic") from None
    stage = query.pipeline.stages[0]
    if isinstance(stage, m.SpansetFilter) and isinstance(stage.expr, m.BinaryOp) \
            and isinstance(stage.expr.lhs, m.Attribute | m.Intrinsic):
        return stage.expr.lhs
    raise BadRequest(f"invalid tag {text!r}: expected a TraceQL attribute or intrinsic")


def _v1_tag(tag: str) -> str:
    """v1 names tags without a scope: ``service.name`` means span or resource (``.service.name``)."""
    intrinsic = {"name", "status", "kind", "duration", "statusMessage", "rootName", "rootServiceName"}
    return tag if tag in intrinsic or tag.startswith(".") else "." + tag


def _co_occurring(q: str | None) -> m.FieldExpr | None:
    """The filter of ``q`` when it is one spanset filter; a query that does not parse is ignored
    (Tempo's documented behaviour, since editors send half-typed queries)."""
    if not q:
        return None
    try:
        query = parse(q)
    except TraceQLError:
        return None
    stages = query.pipeline.stages
    if len(stages) == 1 and isinstance(stages[0], m.SpansetFilter):
        return stages[0].expr
    return None


def _metrics_query(params: QueryParams) -> tuple[m.Query, int, int]:
    q = params.get("q") or params.get("query")
    if not q:
        raise BadRequest("q is required: a TraceQL metrics query such as {} | rate()")
    query = parse(q)
    if query.metrics is None:
        raise BadRequest("not a metrics query: end it with a metrics function such as | rate()")
    lo, hi = _optional_window(params)
    now = time.time_ns()
    hi = now if hi is None else hi
    lo = hi - 3600 * 10**9 if lo is None else lo
    if hi <= lo:
        raise BadRequest("invalid time range: end must be after start")
    return query, lo, hi


def _step(params: QueryParams, lo: int, hi: int) -> int:
    text = params.get("step")
    if not text:  # Tempo's default: about 100 points over the range, at least one second
        return max(10**9, (hi - lo) // 100)
    try:
        step = parse_go_duration(text) if not text.replace(".", "").isdigit() else int(float(text) * 1e9)
    except ParamError:
        raise BadRequest(f"invalid step {text!r}: expected a duration such as 30s") from None
    if step <= 0:
        raise BadRequest(f"invalid step {text!r}: must be positive")
    return step


def _version() -> str:
    try:
        return metadata.version("spanlake")
    except metadata.PackageNotFoundError:
        return "unknown"
