"""OTLP/JSON trace requests -> span table (OTLP spec, "JSON Protobuf Encoding").

Differences from protobuf's own JSON mapping, as the OTLP spec requires: trace and span IDs are hex
(accepted in any case; the official example sends upper case), not base64. As protobuf's parser does,
both lowerCamelCase and original field names are accepted, enums as numbers or names, 64-bit integers
as numbers or strings, and unknown fields are ignored. Shape errors name the field path.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from spanlake.collector.formats.anyvalue import INT64_MAX, json_int64, json_kind, json_typed
from spanlake.collector.formats.attr_columns import TypedAttrs
from spanlake.collector.formats.errors import FormatError, TooManySpans, client_errors
from spanlake.collector.formats.otlp_json_fast import SPAN_KINDS, STATUS_CODES, Deferred, decode_canonical
from spanlake.collector.formats.result import ConvertResult
from spanlake.collector.formats.span_columns import (
    BAD_SPAN_ID,
    BAD_TRACE_ID,
    ZERO_SPAN_ID,
    ZERO_TRACE_ID,
    Resources,
    Scopes,
    SpanColumns,
)
from spanlake.storage.schema import ValueType

Path = Callable[[], str]

UINT32_MAX = 2**32 - 1
UINT64_MAX = 2**64 - 1
BEYOND_INT64 = -1  # stands for a timestamp after 2262, which the int64 column cannot hold


@client_errors
def decode_otlp_json(body: bytes | str, max_spans: int | None = None) -> ConvertResult:
    """An OTLP/JSON ``ExportTraceServiceRequest`` (or ``TracesData``: same shape).

    Over ``max_spans`` spans raises ``TooManySpans`` before the spans are converted.
    """
    try:
        obj = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FormatError(f"not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise FormatError(f"expected a JSON object with resourceSpans, got {json_kind(obj)}")
    if max_spans is not None and (count := _count_spans(obj)) > max_spans:
        raise TooManySpans(f"the request has {count} spans, over the limit of {max_spans} per request "
                           "(--max-spans-per-request); send smaller batches")
    try:
        return decode_canonical(obj, add_resource, add_scope)
    except (Deferred, FormatError):
        pass  # not the common form, or an error: the general reader handles it and names the place
    return read_general(obj)


def read_general(obj: dict[str, Any]) -> ConvertResult:
    """Any OTLP/JSON request object, span by span, with errors naming the field path."""
    cols: SpanColumns[TypedAttrs] = SpanColumns(TypedAttrs(), TypedAttrs(), TypedAttrs())
    for i, resource_spans in enumerate(_list(obj, "resourceSpans", "resource_spans", "")):
        _add_resource_spans(cols, _object(resource_spans, f"resourceSpans[{i}]"), f"resourceSpans[{i}]")
    return ConvertResult(cols.table(), sum(cols.rejected.values()), cols.message())


def _add_resource_spans(cols: SpanColumns[TypedAttrs], obj: dict[str, Any], path: str) -> None:
    index = add_resource(cols.resources, obj, path)
    for j, scope_spans in enumerate(_list(obj, "scopeSpans", "scope_spans", path)):
        where = f"{path}.scopeSpans[{j}]"
        _add_scope_spans(cols, _object(scope_spans, where), where, index)


def add_resource(resources: Resources, obj: dict[str, Any], path: str) -> int:
    """The resource of a ResourceSpans object, added once; returns its index."""
    resource = _object(_get(obj, "resource", "resource") or {}, f"{path}.resource")
    service = _add_attrs(resources.attrs, _get(resource, "attributes", "attributes"),
                         lambda: f"{path}.resource.attributes")
    dropped = _uint(resource, "droppedAttributesCount", "dropped_attributes_count",
                    f"{path}.resource")
    return resources.add(dropped, _str(obj, "schemaUrl", "schema_url", path), service)


def add_scope(scopes: Scopes, obj: dict[str, Any], path: str) -> int:
    """The scope of a ScopeSpans object, added once; returns its index."""
    scope = _object(_get(obj, "scope", "scope") or {}, f"{path}.scope")
    _add_attrs(scopes.attrs, _get(scope, "attributes", "attributes"),
               lambda: f"{path}.scope.attributes")
    return scopes.add(
        _str(scope, "name", "name", f"{path}.scope"),
        _str(scope, "version", "version", f"{path}.scope"),
        _uint(scope, "droppedAttributesCount", "dropped_attributes_count", f"{path}.scope"),
        _str(obj, "schemaUrl", "schema_url", path),
    )


def _add_scope_spans(cols: SpanColumns[TypedAttrs], obj: dict[str, Any], path: str, resource: int) -> None:
    index = add_scope(cols.scopes, obj, path)
    kept = len(cols.name)
    for k, span in enumerate(_list(obj, "spans", "spans", path)):
        _add_span(cols, _object(span, f"{path}.spans[{k}]"), f"{path}.spans[{k}]")
    cols.runs.append((resource, index, len(cols.name) - kept))


def _add_span(cols: SpanColumns[TypedAttrs], span: dict[str, Any], path: str) -> None:
    get = span.get
    trace_id = _hex(_pick(get, "traceId", "trace_id"), 16, path, "traceId")
    span_id = _hex(_pick(get, "spanId", "span_id"), 8, path, "spanId")
    parent = _hex(_pick(get, "parentSpanId", "parent_span_id"), 8, path, "parentSpanId")
    if len(trace_id) != 16 or trace_id == ZERO_TRACE_ID:
        cols.rejected[BAD_TRACE_ID] += 1
        return
    if len(span_id) != 8 or span_id == ZERO_SPAN_ID:
        cols.rejected[BAD_SPAN_ID] += 1
        return
    start = _nanos(_pick(get, "startTimeUnixNano", "start_time_unix_nano"), path, "startTimeUnixNano")
    end = _nanos(_pick(get, "endTimeUnixNano", "end_time_unix_nano"), path, "endTimeUnixNano")
    status = _pick(get, "status", "status") or {}
    if type(status) is not dict:
        raise FormatError(f"{path}.status: expected an object, got {json_kind(status)}")
    cols.trace_id.append(trace_id)
    cols.span_id.append(span_id)
    cols.parent_span_id.append(parent if parent and parent != ZERO_SPAN_ID else None)
    cols.trace_state.append(_str(span, "traceState", "trace_state", path))
    cols.flags.append(_uint(span, "flags", "flags", path))
    cols.name.append(_str(span, "name", "name", path))
    cols.kind.append(_enum(_pick(get, "kind", "kind"), SPAN_KINDS, path, "kind"))
    cols.start.append(start)
    cols.end.append(end)
    cols.status_code.append(_enum(status.get("code"), STATUS_CODES, path, "status.code"))
    cols.status_message.append(_str(status, "message", "message", f"{path}.status"))
    _add_attrs(cols.span_attrs, _pick(get, "attributes", "attributes"),
               lambda: f"{path}.attributes")
    cols.dropped_attributes.append(_uint(span, "droppedAttributesCount", "dropped_attributes_count",
                                         path))
    cols.dropped_events.append(_uint(span, "droppedEventsCount", "dropped_events_count", path))
    cols.dropped_links.append(_uint(span, "droppedLinksCount", "dropped_links_count", path))
    events = _pick(get, "events", "events")
    _add_events(cols, _list(span, "events", "events", path) if events else [], path)
    links = _pick(get, "links", "links")
    _add_links(cols, _list(span, "links", "links", path) if links else [], path)


def _add_events(cols: SpanColumns[TypedAttrs], events: list[Any], path: str) -> None:
    values, attrs = cols.events.values, cols.events.attrs
    for e, raw in enumerate(events):
        where = f"{path}.events[{e}]"
        event = _object(raw, where)
        values["time_unix_nano"].append(
            _nanos(_get(event, "timeUnixNano", "time_unix_nano"), where, "timeUnixNano"))
        values["name"].append(_str(event, "name", "name", where))
        values["dropped_attributes_count"].append(
            _uint(event, "droppedAttributesCount", "dropped_attributes_count", where))
        _add_attrs(attrs, _get(event, "attributes", "attributes"),
                   lambda: f"{where}.attributes")  # noqa: B023 (called before the loop moves on)
    cols.events.offsets.append(len(values["name"]))


def _add_links(cols: SpanColumns[TypedAttrs], links: list[Any], path: str) -> None:
    values, attrs = cols.links.values, cols.links.attrs
    for n, raw in enumerate(links):
        where = f"{path}.links[{n}]"
        link = _object(raw, where)
        # An empty link ID reads as the all-zero ID, as in the collector's pdata.
        values["trace_id"].append(
            _hex(_get(link, "traceId", "trace_id"), 16, where, "traceId") or ZERO_TRACE_ID)
        values["span_id"].append(
            _hex(_get(link, "spanId", "span_id"), 8, where, "spanId") or ZERO_SPAN_ID)
        values["trace_state"].append(_str(link, "traceState", "trace_state", where))
        values["dropped_attributes_count"].append(
            _uint(link, "droppedAttributesCount", "dropped_attributes_count", where))
        values["flags"].append(_uint(link, "flags", "flags", where))
        _add_attrs(attrs, _get(link, "attributes", "attributes"),
                   lambda: f"{where}.attributes")  # noqa: B023
    cols.links.offsets.append(len(values["flags"]))


def _add_attrs(attrs: TypedAttrs, raw: Any, path: Path) -> str:
    """Add one row of attributes; returns the first string ``service.name`` value, or ""."""
    service = None
    if raw is not None:
        if not isinstance(raw, list):
            raise FormatError(f"{path()}: expected an array, got {json_kind(raw)}")
        keys, types, strs = attrs.keys.append, attrs.types.append, attrs.strs.append
        for a, kv in enumerate(raw):
            if type(kv) is not dict:
                raise FormatError(f"{path()}[{a}]: expected a KeyValue object, got {json_kind(kv)}")
            key = kv.get("key", "")
            if type(key) is not str:
                raise FormatError(f"{path()}[{a}].key: expected a string, got {json_kind(key)}")
            value = kv.get("value")
            text = value.get("stringValue") if type(value) is dict else None
            if type(text) is str:  # the common case, without the general parser
                keys(key)
                types(ValueType.STRING)
                strs(text)
            else:
                value_type, typed = json_typed({} if value is None else value,
                                               f"{path()}[{a}].value")
                attrs.add(key, value_type, typed)
                text = typed if value_type == ValueType.STRING else None
            if service is None and text is not None and key == "service.name":
                service = text
    attrs.end_row()
    return service or ""


# ---- field access ---------------------------------------------------------------------------------


def _pick(get: Callable[[str], Any], camel: str, snake: str) -> Any:
    """``_get`` with the object's bound ``get``: one less lookup on the per-span path."""
    value = get(camel)
    return get(snake) if value is None else value


def _get(obj: dict[str, Any], camel: str, snake: str) -> Any:
    """A field by its JSON name or its proto name; a JSON null is the same as absent."""
    value = obj.get(camel)
    return obj.get(snake) if value is None else value


def _object(raw: Any, path: str) -> dict[str, Any]:
    if type(raw) is not dict:
        raise FormatError(f"{path}: expected an object, got {json_kind(raw)}")
    return raw


def _list(obj: dict[str, Any], camel: str, snake: str, path: str) -> list[Any]:
    raw = _get(obj, camel, snake)
    if raw is None:
        return []
    if type(raw) is not list:
        where = f"{path}.{camel}" if path else camel
        raise FormatError(f"{where}: expected an array, got {json_kind(raw)}")
    return raw


def _str(obj: dict[str, Any], camel: str, snake: str, path: str) -> str:
    raw = obj.get(camel)
    if type(raw) is str:
        return raw
    if raw is None:
        raw = obj.get(snake)
        if raw is None:
            return ""
    if type(raw) is not str:
        raise FormatError(f"{path}.{camel}: expected a string, got {json_kind(raw)}")
    return raw


def _uint(obj: dict[str, Any], camel: str, snake: str, path: str) -> int:
    """A uint32 / fixed32 field."""
    raw = obj.get(camel)
    if raw is None:
        raw = obj.get(snake)
        if raw is None:
            return 0
    if type(raw) is int and 0 <= raw <= UINT32_MAX:
        return raw
    return json_int64(raw, f"{path}.{camel}", 0, UINT32_MAX)


def _count_spans(obj: dict[str, Any]) -> int:
    """Spans in a request, counted leniently (the conversion reports what is malformed)."""
    count = 0
    for rs in _or_empty(obj.get("resourceSpans", obj.get("resource_spans"))):
        for ss in _or_empty(rs.get("scopeSpans", rs.get("scope_spans")) if isinstance(rs, dict) else None):
            count += len(_or_empty(ss.get("spans")) if isinstance(ss, dict) else [])
    return count


def _or_empty(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _nanos(raw: Any, path: str, name: str) -> int:
    """A fixed64 nanosecond timestamp (the column is int64: up to the year 2262)."""
    if type(raw) in (str, int) and str(raw).isascii() and str(raw).isdigit():
        value = int(raw)
        if value <= INT64_MAX:
            return value
        if value <= UINT64_MAX:  # a valid fixed64 past 2262: rejected per span at admission
            return BEYOND_INT64
    if raw is None:
        return 0
    return json_int64(raw, f"{path}.{name}", 0, INT64_MAX)


def _enum(raw: Any, names: dict[str, int], path: str, field: str) -> int:
    if raw is None:
        return 0
    if type(raw) is int:
        return raw
    if type(raw) is str and raw in names:
        return names[raw]
    raise FormatError(
        f"{path}.{field}: expected one of {', '.join(names)} or a number, got {raw!r:.40}"
    )


def _hex(raw: Any, size: int, path: str, field: str) -> bytes:
    """A hex ID of ``size`` bytes, any letter case; "" or absent gives b"" (left to the ID checks)."""
    if raw is None or raw == "":
        return b""
    if type(raw) is str and len(raw) == 2 * size:
        try:
            return bytes.fromhex(raw)  # 2*size characters and size bytes: no whitespace slipped in
        except ValueError:
            pass
    raise FormatError(f"{path}.{field}: not {2 * size} hex characters: {raw!r:.40}")
