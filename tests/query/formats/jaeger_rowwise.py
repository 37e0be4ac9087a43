"""The row-by-row Jaeger UI JSON builder spanlake used before the column-wise one: the reference the
column-wise builder (query/formats/jaeger_json.py) is compared with in test_jaeger_json_columns.py.
Slow (a dict per row) but plainly right, and checked against the golden files by that test too.

Pure: a ``SPAN_SCHEMA`` table in, JSON-ready dicts out. The mapping (collector-contrib
``pkg/translator/jaeger``):
- each distinct resource becomes a process ``p1..pN``, numbered in span order; ``service.name`` is the
  process's service and is left out of its tags;
- span tags are, in order: ``otel.scope.name``/``otel.scope.version``, the span attributes,
  ``span.kind``, ``otel.status_code``, ``error`` (bool, for status ERROR), ``otel.status_description``,
  ``w3c.tracestate``;
- the parent becomes the first ``CHILD_OF`` reference, links become ``FOLLOWS_FROM`` references (or
  ``CHILD_OF`` with ``opentracing.ref_type=child_of``); events become logs with an ``event`` field;
- times are microseconds; int64 values beyond 2^53 are decimal strings (JavaScript would round them);
  bytes are base64; arrays and maps are their JSON text.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterable
from typing import Any

import pyarrow as pa

from spanlake.query.ids import format_span_id, format_trace_id
from spanlake.storage.attributes import AttrRow, attr_as_string, attr_value
from spanlake.storage.schema import SPAN_KIND_NAMES, STATUS_ERROR, STATUS_OK, ValueType

Json = dict[str, Any]

NO_SERVICE_NAME = "OTLPResourceNoServiceName"  # the translator's name for a resource without one
WARNINGS_KEY = "@jaeger@warnings"  # where Jaeger keeps span warnings in OTLP (internal/jptrace/warning.go)
_JS_MAX_SAFE_INTEGER = 2**53 - 1
_STRING = int(ValueType.STRING)


def spans_to_jaeger_traces(spans: pa.Table) -> list[Json]:
    """One Jaeger UI trace per trace ID, in order of first appearance; spans keep their table order."""
    by_trace: dict[bytes, list[Json]] = {}
    for row in spans.to_pylist():
        by_trace.setdefault(row["trace_id"], []).append(row)
    return [_trace(trace_id, rows) for trace_id, rows in by_trace.items()]


def _trace(trace_id: bytes, rows: list[Json]) -> Json:
    processes: dict[str, Json] = {}
    process_ids: dict[Any, str] = {}  # resource -> pN: identical processes share an ID
    spans = []
    for row in rows:
        key = (row["service_name"], tuple(tuple(a.values()) for a in row["resource_attributes"]))
        if key not in process_ids:
            process_ids[key] = f"p{len(process_ids) + 1}"
            processes[process_ids[key]] = _process(row)
        spans.append(_span(row, process_ids[key]))
    return {"traceID": format_trace_id(trace_id), "spans": spans, "processes": processes, "warnings": None}


def _process(row: Json) -> Json:
    resource: list[AttrRow] = row["resource_attributes"]
    has_name = any(a["key"] == "service.name" for a in resource)
    service = row["service_name"] or ("" if has_name else NO_SERVICE_NAME)
    return {"serviceName": service, "tags": [kv(a) for a in resource if a["key"] != "service.name"]}


def _span(row: Json, process_id: str) -> Json:
    trace_id = format_trace_id(row["trace_id"])
    tags, warnings = _span_tags(row)
    span: Json = {"traceID": trace_id, "spanID": format_span_id(row["span_id"])}
    flags = row["flags"] & 0xFF  # the W3C trace flags byte; the rest are OTLP-only bits
    if flags:
        span["flags"] = flags
    span.update(
        operationName=row["name"],
        references=_references(row, trace_id),
        startTime=row["start_time_unix_nano"] // 1000,
        duration=max(0, row["end_time_unix_nano"] - row["start_time_unix_nano"]) // 1000,
        tags=tags,
        logs=[_log(event) for event in row["events"]],
        processID=process_id,
        warnings=warnings or None,
    )
    return span


def _span_tags(row: Json) -> tuple[list[Json], list[str]]:
    tags: list[Json] = []
    warnings: list[str] = []
    if row["scope_name"]:
        tags.append(_string_kv("otel.scope.name", row["scope_name"]))
    if row["scope_version"]:
        tags.append(_string_kv("otel.scope.version", row["scope_version"]))
    for a in row["span_attributes"]:
        if a["key"] == WARNINGS_KEY:
            warnings.extend(_warnings(a))
        else:
            tags.append(kv(a))
    if SPAN_KIND_NAMES.get(row["kind"]):
        tags.append(_string_kv("span.kind", SPAN_KIND_NAMES[row["kind"]]))
    if row["status_code"] == STATUS_OK:
        tags.append(_string_kv("otel.status_code", "OK"))
    elif row["status_code"] == STATUS_ERROR:
        tags.append(_string_kv("otel.status_code", "ERROR"))
        tags.append({"key": "error", "type": "bool", "value": True})
    if row["status_message"]:
        tags.append(_string_kv("otel.status_description", row["status_message"]))
    if row["trace_state"]:
        tags.append(_string_kv("w3c.tracestate", row["trace_state"]))
    return tags, warnings


def _warnings(a: AttrRow) -> list[str]:
    value = attr_value(a)
    if isinstance(value, list):
        return [str(v) for v in value]
    return [attr_as_string(a)]


def _references(row: Json, trace_id: str) -> list[Json]:
    refs: list[Json] = []
    parent = row["parent_span_id"]
    if parent is not None and parent != bytes(8):
        refs.append(_ref("CHILD_OF", trace_id, format_span_id(parent)))
    for link in row["links"]:
        ref_type = _link_ref_type(link["attributes"])
        if refs and link["trace_id"] == row["trace_id"] and link["span_id"] == parent:
            refs[0]["refType"] = ref_type  # the link restates the parent: it may only change its type
            continue
        refs.append(_ref(ref_type, format_trace_id(link["trace_id"]), format_span_id(link["span_id"])))
    return refs


def _link_ref_type(attributes: Iterable[AttrRow]) -> str:
    for a in attributes:
        if a["key"] == "opentracing.ref_type" and attr_as_string(a) == "child_of":
            return "CHILD_OF"
    return "FOLLOWS_FROM"


def _ref(ref_type: str, trace_id: str, span_id: str) -> Json:
    return {"refType": ref_type, "traceID": trace_id, "spanID": span_id}


def _log(event: Json) -> Json:
    fields: list[Json] = []
    if event["name"] and not any(a["key"] == "event" for a in event["attributes"]):
        fields.append(_string_kv("event", event["name"]))
    fields.extend(kv(a) for a in event["attributes"])
    return {"timestamp": event["time_unix_nano"] // 1000, "fields": fields}


def _string_kv(key: str, value: str) -> Json:
    return {"key": key, "type": "string", "value": value}


def kv(a: AttrRow) -> Json:
    """One attribute as a Jaeger UI key/value with its Jaeger type."""
    t = a["type"]
    if t == _STRING:  # the common case first, without the enum comparisons below
        return {"key": a["key"], "type": "string", "value": a["str"]}
    if t == ValueType.BOOL:
        return {"key": a["key"], "type": "bool", "value": bool(a["bool"])}
    if t == ValueType.INT:
        value: int = a["int"]
        # JavaScript numbers lose precision past 2^53 (jaeger's jsMaxSafeInteger); send those as text.
        return {"key": a["key"], "type": "int64",
                "value": str(value) if abs(value) > _JS_MAX_SAFE_INTEGER else value}
    if t == ValueType.DOUBLE:
        number: float = a["double"]
        # JSON has no NaN or infinity; their Go text keeps the response parseable.
        return {"key": a["key"], "type": "float64",
                "value": number if math.isfinite(number) else attr_as_string(a)}
    if t == ValueType.BYTES:
        return {"key": a["key"], "type": "binary", "value": base64.b64encode(a["bytes"]).decode()}
    return _string_kv(a["key"], attr_as_string(a))
