"""Zipkin's v2 query API (``zipkin2-api.yaml``), what Zipkin's UI (Lens) and Grafana's Zipkin
datasource read.

Served on the Zipkin port (9411, beside ingest) under ``/api/v2`` and ``/zipkin/api/v2`` (Lens calls
the API under its own base path), and on the query port under ``/zipkin``. Lens also asks for its
settings at ``/zipkin/config.json``.

Searches are Zipkin's parameters translated into the one storage query (``zipkin_trace_query``), so
they mean what every other API's searches mean: all conditions hold on one span. Defaults are
Zipkin's: ``endTs`` now, ``lookback`` its ``QUERY_LOOKBACK`` (1 day), ``limit`` 10. Errors are
HTTP 400 with a plain-text message, as Zipkin answers; an unknown trace ID is 404.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from starlette.datastructures import QueryParams

from spanlake.query.adjusters import ZIPKIN, adjust
from spanlake.query.errors import ApiError, NotFound, guarded_routes
from spanlake.query.formats.zipkin_json import ensure_root, spans_to_zipkin
from spanlake.query.params import NS_PER_MS, NS_PER_US, ParamError
from spanlake.storage.api import SpanReader, TraceQuery
from spanlake.storage.attributes import attr_as_string

Json = dict[str, Any]

QUERY_LOOKBACK_MS = 24 * 3600 * 1000  # Zipkin's QUERY_LOOKBACK default
DEFAULT_LIMIT = 10
MAX_LIMIT = 10_000  # traces per search; each one is read whole
MAX_TRACE_IDS = 1_000  # per traceMany request
# What Lens falls back to when config.json is missing (zipkin-lens UiConfig/constants.js); served
# so that Lens gets an answer instead of a 404.
LENS_CONFIG: Json = {
    "environment": "",
    "queryLimit": DEFAULT_LIMIT,
    "defaultLookback": 15 * 60 * 1000,
    "searchEnabled": True,
    "dependency": {"enabled": True, "lowErrorRate": 0.5, "highErrorRate": 0.75},
}
_HEX_ID = re.compile(r"[0-9a-fA-F]{1,32}")
_MAX_PARAM = (2**63 - 1) // NS_PER_MS  # milliseconds (and microseconds) that fit int64 nanoseconds


def zipkin_trace_query(params: QueryParams, now_ms: int,
                       span_names: Callable[[str], list[str]]) -> TraceQuery:
    """``GET /api/v2/traces`` parameters as the storage search (the one place they are translated).

    ``span_names(service)`` lists the stored span names of a service: Zipkin lower-cases span names,
    so ``spanName`` is matched to a stored name case-insensitively.
    """
    service = _word(params.get("serviceName"))
    span_name = _word(params.get("spanName"))
    if span_name and service:
        stored = [n for n in span_names(service) if n.lower() == span_name.lower()]
        span_name = span_name if span_name in stored else (stored[0] if stored else span_name)
    attributes, marks = _annotation_query(params.get("annotationQuery") or "")
    remote = _word(params.get("remoteServiceName"))
    if remote:
        attributes["peer.service"] = remote
    end_ms = _int(params, "endTs", now_ms)
    lookback_ms = _int(params, "lookback", QUERY_LOOKBACK_MS)
    min_us, max_us = _opt_int(params, "minDuration"), _opt_int(params, "maxDuration")
    limit = _int(params, "limit", DEFAULT_LIMIT)
    if not 0 < limit <= MAX_LIMIT:
        raise ParamError(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
    return TraceQuery(
        service_name=service,
        operation_name=span_name,
        attributes=attributes,
        marks=tuple(marks),
        start_time_min_ns=(end_ms - lookback_ms) * NS_PER_MS,
        start_time_max_ns=end_ms * NS_PER_MS,
        duration_min_ns=min_us * NS_PER_US if min_us is not None else None,
        duration_max_ns=max_us * NS_PER_US if max_us is not None else None,
        search_depth=limit,
    )


def _annotation_query(text: str) -> tuple[dict[str, str], list[str]]:
    """``http.uri=/foo and retried``: ``key=value`` terms constrain tags, bare words annotations or
    tag keys. ``error`` is Zipkin's failed-span tag, which spanlake keeps as the span status."""
    attributes: dict[str, str] = {}
    marks: list[str] = []
    for term in re.split(r"\s+and\s+", text.strip()) if text.strip() else []:
        key, sep, value = term.strip().partition("=")
        if sep:
            attributes[key] = value
        elif key == "error":
            attributes["error"] = "true"
        else:
            marks.append(key)
    return attributes, marks


def _word(text: str | None) -> str | None:
    """Lens sends ``all`` for "any"; Zipkin treats it (and an empty value) as no filter."""
    return None if not text or text == "all" else text


def _int(params: QueryParams, name: str, default: int) -> int:
    value = _opt_int(params, name)
    return default if value is None else value


def _opt_int(params: QueryParams, name: str) -> int | None:
    text = params.get(name)
    if not text:
        return None
    try:
        value = int(text, 10)
    except ValueError:
        raise ParamError(f"{name} must be an integer, got {text!r}") from None
    if not 0 <= value <= _MAX_PARAM:
        raise ParamError(f"{name} must be between 0 and {_MAX_PARAM}, got {value}")
    return value


def parse_zipkin_trace_id(text: str) -> bytes:
    """16 or 32 hex characters (shorter ones are left-padded, as Zipkin normalises them)."""
    if not _HEX_ID.fullmatch(text):
        raise ParamError(f"invalid trace ID {text!r}: expected 16 or 32 hex characters")
    return bytes.fromhex(text.rjust(32, "0"))


def load_zipkin_traces(reader: SpanReader, ids: Sequence[bytes]) -> list[list[Json]]:
    """The Zipkin JSON of each found trace, in ``ids`` order, each with a root span."""
    if not ids:
        return []
    table = adjust(reader.get_traces(list(ids)), ZIPKIN)
    by_trace: dict[bytes, list[Json]] = {}
    for trace_id, span in zip(table["trace_id"].to_pylist(), spans_to_zipkin(table), strict=True):
        by_trace.setdefault(trace_id, []).append(span)
    return [ensure_root(by_trace[i]) for i in dict.fromkeys(ids) if i in by_trace]


def _attribute_values(reader: SpanReader, key: str, columns: Sequence[str], now_ms: int,
                      services: Sequence[str] | None = None) -> list[str]:
    """Distinct text values of attribute ``key`` on spans of the last ``QUERY_LOOKBACK``."""
    table = reader.scan_spans(columns, (now_ms - QUERY_LOOKBACK_MS) * NS_PER_MS, now_ms * NS_PER_MS,
                              services)
    values: set[str] = set()
    for column in columns:
        for attributes in table[column].to_pylist():
            values.update(attr_as_string(a) for a in attributes if a["key"] == key)
    return sorted(v for v in values if v)


def _json(body: Any) -> Response:
    return Response(json.dumps(body, separators=(",", ":")), media_type="application/json")


def _answer(compute: Callable[[], Any]) -> Response:
    return _json(compute())


def error_response(error: ApiError) -> Response:
    """Zipkin's error answer: the message as plain text."""
    return PlainTextResponse(error.message, status_code=error.status, headers=error.headers)


def _required(params: QueryParams, name: str) -> str:
    value = params.get(name)
    if not value:
        raise ParamError(f"{name} is required")
    return value


def router(reader: SpanReader, autocomplete_keys: Sequence[str] = ()) -> APIRouter:
    """The read routes under ``/api/v2``, plus Lens's ``/config.json``; mount it with a prefix."""
    api = APIRouter(route_class=guarded_routes(error_response))
    keys = list(autocomplete_keys)

    def now_ms() -> int:
        return time.time_ns() // NS_PER_MS

    @api.get("/config.json")
    def config() -> Response:
        return _json(LENS_CONFIG)

    @api.get("/api/v2/services")
    def services() -> Response:
        return _answer(reader.get_services)

    @api.get("/api/v2/spans")
    def spans(request: Request) -> Response:
        def compute() -> list[str]:
            service = _required(request.query_params, "serviceName")
            return sorted({op.name.lower() for op in reader.get_operations(service) if op.name})
        return _answer(compute)

    @api.get("/api/v2/remoteServices")
    def remote_services(request: Request) -> Response:
        def compute() -> list[str]:
            service = _required(request.query_params, "serviceName")
            return _attribute_values(reader, "peer.service", ["span_attributes"], now_ms(), [service])
        return _answer(compute)

    @api.get("/api/v2/traces")
    def traces(request: Request) -> Response:
        def compute() -> list[list[Json]]:
            query = zipkin_trace_query(request.query_params, now_ms(),
                                       lambda s: [op.name for op in reader.get_operations(s)])
            return load_zipkin_traces(reader, reader.find_trace_ids(query))
        return _answer(compute)

    @api.get("/api/v2/trace/{trace_id}")
    def trace(trace_id: str) -> Response:
        def compute() -> list[Json]:
            found = load_zipkin_traces(reader, [parse_zipkin_trace_id(trace_id)])
            if not found:
                raise NotFound(f"trace {trace_id} not found")
            return found[0]
        return _answer(compute)

    @api.get("/api/v2/traceMany")
    def trace_many(request: Request) -> Response:
        def compute() -> list[list[Json]]:
            texts = _required(request.query_params, "traceIds").split(",")
            ids = [parse_zipkin_trace_id(t.strip()) for t in texts]
            if len(set(ids)) != len(ids) or len(ids) < 2:
                raise ParamError("traceIds must list at least two unique trace IDs")
            if len(ids) > MAX_TRACE_IDS:
                raise ParamError(f"traceIds lists {len(ids)} trace IDs; at most {MAX_TRACE_IDS}")
            return load_zipkin_traces(reader, ids)
        return _answer(compute)

    @api.get("/api/v2/dependencies")
    def dependencies(request: Request) -> Response:
        def compute() -> list[Json]:
            params = request.query_params
            end_ms = _int(params, "endTs", -1)
            if end_ms < 0:
                raise ParamError("endTs is required")
            lookback_ms = _int(params, "lookback", QUERY_LOOKBACK_MS)
            links = reader.get_dependencies(end_ms * NS_PER_MS, lookback_ms * NS_PER_MS)
            return [{"parent": x.parent, "child": x.child, "callCount": x.call_count} for x in links]
        return _answer(compute)

    @api.get("/api/v2/autocompleteKeys")
    def autocomplete_keys_route() -> Response:
        return _json(keys)

    @api.get("/api/v2/autocompleteValues")
    def autocomplete_values(request: Request) -> Response:
        def compute() -> list[str]:
            key = _required(request.query_params, "key")
            if key not in keys:  # Zipkin: empty for a key that is not configured
                return []
            return _attribute_values(reader, key, ["span_attributes", "resource_attributes"], now_ms())
        return _answer(compute)

    return api

