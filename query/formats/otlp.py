"""Span table -> OTLP: the protobuf request and the OTLP/JSON that Jaeger's api_v3 returns.

Rows are regrouped as OTLP nests them: rows with an identical resource (attributes, dropped count,
schema URL) form one ResourceSpans, rows with an identical scope inside it one ScopeSpans; groups keep
the order of their first row and rows keep their order inside a group.

The JSON follows the ptrace marshaller Jaeger uses (``GetTrace.json`` snapshot): lower-case hex IDs,
enums as numbers, 64-bit integers as strings, empty fields left out, except ``resource``, ``scope`` and a
span's ``status``, which are always written (``{}`` when empty).
"""

from __future__ import annotations

import base64
import json
import math
from typing import Any

import pyarrow as pa
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1 import common_pb2

from spanlake.storage.schema import ValueType

Row = dict[str, Any]
_RESOURCE = ("resource_attributes", "resource_dropped_attributes_count", "resource_schema_url")
_SCOPE = ("scope_name", "scope_version", "scope_attributes", "scope_dropped_attributes_count",
          "scope_schema_url")
_ZERO_TRACE_ID, _ZERO_SPAN_ID = bytes(16), bytes(8)


def spans_to_otlp_json(spans: pa.Table) -> dict[str, Any]:
    """``{"resourceSpans": [...]}`` for a span table."""
    out = []
    for first, scopes in _group(spans):
        resource = _drop_empty({
            "attributes": _attrs_json(first["resource_attributes"]),
            "droppedAttributesCount": first["resource_dropped_attributes_count"],
        })
        scope_spans = []
        for scope_first, rows in scopes:
            scope = _drop_empty({
                "name": scope_first["scope_name"],
                "version": scope_first["scope_version"],
                "attributes": _attrs_json(scope_first["scope_attributes"]),
                "droppedAttributesCount": scope_first["scope_dropped_attributes_count"],
            })
            scope_spans.append(_drop_empty({
                "scope": scope,
                "spans": [_span_json(row) for row in rows],
                "schemaUrl": scope_first["scope_schema_url"],
            }, keep=("scope",)))
        out.append(_drop_empty({
            "resource": resource,
            "scopeSpans": scope_spans,
            "schemaUrl": first["resource_schema_url"],
        }, keep=("resource",)))
    return {"resourceSpans": out}


def spans_to_otlp_request(spans: pa.Table) -> ExportTraceServiceRequest:
    """The span table as an OTLP ``ExportTraceServiceRequest``."""
    request = ExportTraceServiceRequest()
    for first, scopes in _group(spans):
        resource_spans = request.resource_spans.add(schema_url=first["resource_schema_url"])
        _attrs_pb(resource_spans.resource.attributes, first["resource_attributes"])
        resource_spans.resource.dropped_attributes_count = first["resource_dropped_attributes_count"]
        for scope_first, rows in scopes:
            scope_spans = resource_spans.scope_spans.add(schema_url=scope_first["scope_schema_url"])
            scope = scope_spans.scope
            scope.name, scope.version = scope_first["scope_name"], scope_first["scope_version"]
            _attrs_pb(scope.attributes, scope_first["scope_attributes"])
            scope.dropped_attributes_count = scope_first["scope_dropped_attributes_count"]
            for row in rows:
                _span_pb(scope_spans.spans.add(), row)
    return request


# ---- grouping -------------------------------------------------------------------------------------


def _group(spans: pa.Table) -> list[tuple[Row, list[tuple[Row, list[Row]]]]]:
    """Rows grouped by resource, then by scope, in order of first appearance."""
    resources: dict[Any, tuple[Row, dict[Any, tuple[Row, list[Row]]]]] = {}
    last_resource: tuple[Any, ...] | None = None
    last_scope: tuple[Any, ...] | None = None
    resource_key = scope_key = None
    for row in spans.to_pylist():
        # Spans of one resource and scope are usually adjacent: compare with the previous row
        # (a C-level equality test) and build a hashable key only when they differ.
        resource = tuple(row[name] for name in _RESOURCE)
        if resource != last_resource:
            last_resource, resource_key = resource, _key(resource)
        scope = tuple(row[name] for name in _SCOPE)
        if scope != last_scope:
            last_scope, scope_key = scope, _key(scope)
        _, scopes = resources.setdefault(resource_key, (row, {}))
        scopes.setdefault(scope_key, (row, []))[1].append(row)
    return [(first, list(scopes.values())) for first, scopes in resources.values()]


def _key(value: Any) -> Any:
    """A hashable form of a column value; doubles by bit pattern so NaN groups with NaN."""
    if isinstance(value, list | tuple):
        return tuple(_key(item) for item in value)
    if isinstance(value, dict):
        return tuple((k, _key(v)) for k, v in value.items())
    if isinstance(value, float):
        return ("double", value.hex())
    return value


# ---- JSON -----------------------------------------------------------------------------------------


def _span_json(row: Row) -> dict[str, Any]:
    status = _drop_empty({"message": row["status_message"], "code": row["status_code"]})
    return _drop_empty({
        "traceId": row["trace_id"].hex(),
        "spanId": row["span_id"].hex(),
        "traceState": row["trace_state"],
        "parentSpanId": (row["parent_span_id"] or b"").hex(),
        "flags": row["flags"],
        "name": row["name"],
        "kind": row["kind"],
        "startTimeUnixNano": _nanos(row["start_time_unix_nano"]),
        "endTimeUnixNano": _nanos(row["end_time_unix_nano"]),
        "attributes": _attrs_json(row["span_attributes"]),
        "droppedAttributesCount": row["dropped_attributes_count"],
        "events": [_event_json(event) for event in row["events"]],
        "droppedEventsCount": row["dropped_events_count"],
        "links": [_link_json(link) for link in row["links"]],
        "droppedLinksCount": row["dropped_links_count"],
        "status": status,
    }, keep=("status",))


def _event_json(event: Row) -> dict[str, Any]:
    return _drop_empty({
        "timeUnixNano": _nanos(event["time_unix_nano"]),
        "name": event["name"],
        "attributes": _attrs_json(event["attributes"]),
        "droppedAttributesCount": event["dropped_attributes_count"],
    })


def _link_json(link: Row) -> dict[str, Any]:
    return _drop_empty({
        "traceId": _id_hex(link["trace_id"], _ZERO_TRACE_ID),
        "spanId": _id_hex(link["span_id"], _ZERO_SPAN_ID),
        "traceState": link["trace_state"],
        "attributes": _attrs_json(link["attributes"]),
        "droppedAttributesCount": link["dropped_attributes_count"],
        "flags": link["flags"],
    })


def _attrs_json(attrs: list[Row]) -> list[dict[str, Any]]:
    return [{"key": a["key"], "value": _value_json(a)} for a in attrs]


def _value_json(attr: Row) -> dict[str, Any]:
    value_type = attr["type"]
    if value_type == ValueType.STRING:
        return {"stringValue": attr["str"]}
    if value_type == ValueType.INT:
        return {"intValue": str(attr["int"])}
    if value_type == ValueType.DOUBLE:
        return {"doubleValue": _double(attr["double"])}
    if value_type == ValueType.BOOL:
        return {"boolValue": attr["bool"]}
    if value_type == ValueType.BYTES:
        return {"bytesValue": base64.b64encode(attr["bytes"]).decode()}
    if value_type == ValueType.ARRAY:
        return {"arrayValue": json.loads(attr["str"])}
    if value_type == ValueType.KVLIST:
        return {"kvlistValue": json.loads(attr["str"])}
    return {}


def _double(value: float) -> float | str:
    """proto3 JSON: NaN and the infinities are strings."""
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def _nanos(value: int) -> str:
    return str(value) if value else ""


def _id_hex(value: bytes, zero: bytes) -> str:
    return "" if value == zero else value.hex()


def _drop_empty(obj: dict[str, Any], keep: tuple[str, ...] = ()) -> dict[str, Any]:
    """Leave out empty strings, zeros and empty lists (proto3 defaults), except the ``keep`` fields."""
    return {k: v for k, v in obj.items() if k in keep or (v != "" and v != 0 and v != [])}


# ---- protobuf -------------------------------------------------------------------------------------


def _span_pb(span: Any, row: Row) -> None:
    span.trace_id, span.span_id = row["trace_id"], row["span_id"]
    span.parent_span_id = row["parent_span_id"] or b""
    span.trace_state, span.flags, span.name = row["trace_state"], row["flags"], row["name"]
    span.kind = row["kind"]
    span.start_time_unix_nano = row["start_time_unix_nano"]
    span.end_time_unix_nano = row["end_time_unix_nano"]
    _attrs_pb(span.attributes, row["span_attributes"])
    span.dropped_attributes_count = row["dropped_attributes_count"]
    for event in row["events"]:
        out = span.events.add(time_unix_nano=event["time_unix_nano"], name=event["name"])
        _attrs_pb(out.attributes, event["attributes"])
        out.dropped_attributes_count = event["dropped_attributes_count"]
    span.dropped_events_count = row["dropped_events_count"]
    for link in row["links"]:
        out = span.links.add(trace_state=link["trace_state"], flags=link["flags"])
        out.trace_id = b"" if link["trace_id"] == _ZERO_TRACE_ID else link["trace_id"]
        out.span_id = b"" if link["span_id"] == _ZERO_SPAN_ID else link["span_id"]
        _attrs_pb(out.attributes, link["attributes"])
        out.dropped_attributes_count = link["dropped_attributes_count"]
    span.dropped_links_count = row["dropped_links_count"]
    span.status.code, span.status.message = row["status_code"], row["status_message"]


def _attrs_pb(target: Any, attrs: list[Row]) -> None:
    for attr in attrs:
        value = target.add(key=attr["key"]).value
        value.SetInParent()  # an EMPTY value is still written, as pdata (non-nullable) does
        _value_pb(value, attr)


def _value_pb(value: common_pb2.AnyValue, attr: Row) -> None:
    value_type = attr["type"]
    if value_type == ValueType.STRING:
        value.string_value = attr["str"]
    elif value_type == ValueType.INT:
        value.int_value = attr["int"]
    elif value_type == ValueType.DOUBLE:
        value.double_value = attr["double"]
    elif value_type == ValueType.BOOL:
        value.bool_value = attr["bool"]
    elif value_type == ValueType.BYTES:
        value.bytes_value = attr["bytes"]
    elif value_type == ValueType.ARRAY:
        # The stored text is OTLP/JSON, which is protobuf JSON apart from IDs (none in values).
        json_format.ParseDict(json.loads(attr["str"]), value.array_value)
    elif value_type == ValueType.KVLIST:
        json_format.ParseDict(json.loads(attr["str"]), value.kvlist_value)
