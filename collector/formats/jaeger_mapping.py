"""Jaeger's model -> span rows: the mapping both Jaeger wire formats (Thrift and api_v2 proto) share.

The rules are Jaeger's Jaeger->OTLP translation (collector-contrib ``pkg/translator/jaeger``, with the
parent taken as Jaeger's domain model does, ``model/converter``). Each wire decoder
fills the small dataclasses below with already-typed tag values, and ``span_rows`` does the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from spanlake.storage.attributes import attr
from spanlake.storage.schema import SPAN_KIND_BY_NAME, STATUS_ERROR, STATUS_OK, STATUS_UNSET

CHILD_OF, FOLLOWS_FROM = 0, 1
_REF_TYPE_NAMES = {CHILD_OF: "child_of", FOLLOWS_FROM: "follows_from"}
NO_SPAN = bytes(8)
WARNINGS_ATTRIBUTE = "@jaeger@warnings"  # where Jaeger keeps span warnings in OTLP (jptrace)

Tags = list[tuple[str, Any]]  # (key, Python value: str/bool/int/float/bytes) in wire order


@dataclass
class Process:
    service_name: str
    tags: Tags = field(default_factory=list)


@dataclass
class Ref:
    ref_type: int
    trace_id: bytes  # 16 bytes
    span_id: bytes  # 8 bytes


@dataclass
class Log:
    time_unix_nano: int
    fields: Tags


@dataclass
class Span:
    trace_id: bytes
    span_id: bytes
    parent_span_id: bytes  # NO_SPAN when absent (Thrift's explicit parentSpanId)
    name: str
    start_unix_nano: int
    duration_nano: int
    process: Process
    flags: int = 0
    references: list[Ref] = field(default_factory=list)
    tags: Tags = field(default_factory=list)
    logs: list[Log] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def span_row(span: Span) -> dict[str, Any]:
    """One ``SPAN_SCHEMA`` row (a dict for ``storage.rows.spans_table``) for a Jaeger span."""
    attributes = _as_map(span.tags)
    scope_name, scope_version = _scope(attributes)
    kind_tag = attributes.pop("span.kind", None)
    kind = SPAN_KIND_BY_NAME.get(kind_tag, 0) if isinstance(kind_tag, str) and kind_tag else 0
    status_code, status_message = _status(attributes, kind)
    trace_state = attributes.pop("w3c.tracestate", "")
    if span.warnings:
        attributes[WARNINGS_ATTRIBUTE] = list(span.warnings)
    refs = _with_parent(span.trace_id, span.parent_span_id, span.references)
    parent = _parent_of(span.trace_id, refs)
    return {
        "trace_id": span.trace_id,
        "span_id": span.span_id,
        "parent_span_id": None if parent == NO_SPAN else parent,
        "trace_state": trace_state if isinstance(trace_state, str) else "",
        "flags": span.flags & 0xFFFFFFFF,
        "name": span.name,
        "kind": kind,
        "start_time_unix_nano": span.start_unix_nano,
        "end_time_unix_nano": span.start_unix_nano + span.duration_nano,
        "duration_nano": span.duration_nano,
        "status_code": status_code,
        "status_message": status_message,
        "service_name": span.process.service_name,
        "resource_attributes": resource_attributes(span.process),
        "scope_name": scope_name,
        "scope_version": scope_version,
        "span_attributes": [attr(k, v) for k, v in attributes.items()],
        "events": [_event(log) for log in span.logs],
        "links": [_link(r) for r in refs if not (r.ref_type == CHILD_OF and r.span_id == parent)],
    }


def resource_attributes(process: Process) -> list[dict[str, Any]]:
    """``service.name`` first, then the process tags; ``hostname`` and ``jaeger.version`` renamed."""
    mapping: dict[str, Any] = {}
    if process.service_name:
        mapping["service.name"] = process.service_name
    mapping.update(_as_map(process.tags))
    if "hostname" in mapping and "host.name" not in mapping:
        mapping["host.name"] = mapping.pop("hostname")
    if "jaeger.version" in mapping and "opencensus.exporterversion" not in mapping:
        mapping["opencensus.exporterversion"] = f"Jaeger-{_str(mapping.pop('jaeger.version'))}"
    return [attr(k, v) for k, v in mapping.items()]


def _as_map(tags: Tags) -> dict[str, Any]:
    # Like pdata's Map.Put*: a repeated key keeps its first position and takes the last value.
    mapping: dict[str, Any] = {}
    for key, value in tags:
        mapping[key] = value
    return mapping


def _str(value: Any) -> str:
    """pdata ``Value.Str()``: the string of a string value, "" for any other type."""
    return value if isinstance(value, str) else ""


def _scope(attributes: dict[str, Any]) -> tuple[str, str]:
    # Newer SDKs write otel.scope.*; older translators wrote otel.library.*. The version only
    # counts next to a name of the same family.
    for prefix in ("otel.scope", "otel.library"):
        if f"{prefix}.name" in attributes:
            name = _str(attributes.pop(f"{prefix}.name"))
            return name, _str(attributes.pop(f"{prefix}.version", ""))
    return "", ""


def _status(attributes: dict[str, Any], kind: int) -> tuple[int, str]:
    """Status from ``error`` (authoritative when true), then ``otel.status_code``, then HTTP status."""
    code, message, found = STATUS_UNSET, "", False
    if attributes.get("error") is True:
        del attributes["error"]
        code, found = STATUS_ERROR, True
        if "otel.status_description" in attributes:
            message = _str(attributes.pop("otel.status_description"))
        else:
            message = _str(attributes.get("http.status_message", ""))
    if "otel.status_code" in attributes:
        otel_code = _str(attributes.pop("otel.status_code")).upper()
        if not found:
            found = True
            code = {"OK": STATUS_OK, "ERROR": STATUS_ERROR}.get(otel_code, STATUS_UNSET)
            message = _str(attributes.pop("otel.status_description", ""))
    elif not found and "http.status_code" in attributes:
        http_code = _http_status(attributes["http.status_code"])
        if http_code is not None:
            code = _status_from_http(http_code, kind)
            found = code != STATUS_UNSET
            message = _str(attributes.get("http.status_message", ""))
    return (code, message) if found else (STATUS_UNSET, "")


def _http_status(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    return None


def _status_from_http(http_code: int, kind: int) -> int:
    # OTel HTTP semconv: 4xx is an error for clients but not for servers; the translator's generic
    # rule treats 100..398 as success and everything else as an error.
    if 400 <= http_code < 500:
        if kind == SPAN_KIND_BY_NAME["client"]:
            return STATUS_ERROR
        if kind == SPAN_KIND_BY_NAME["server"]:
            return STATUS_UNSET
    return STATUS_UNSET if 100 <= http_code < 399 else STATUS_ERROR


def _with_parent(trace_id: bytes, parent: bytes, refs: list[Ref]) -> list[Ref]:
    """Jaeger's ``MaybeAddParentSpanID``: an explicit parent becomes a leading CHILD_OF reference
    unless a reference to that span of the same trace already exists."""
    if parent == NO_SPAN or any(r.span_id == parent and r.trace_id == trace_id for r in refs):
        return refs
    return [Ref(CHILD_OF, trace_id, parent), *refs]


def _parent_of(trace_id: bytes, refs: list[Ref]) -> bytes:
    """Jaeger's ``Span.ParentSpanID``: the first same-trace CHILD_OF, else the first FOLLOWS_FROM."""
    for wanted in (CHILD_OF, FOLLOWS_FROM):
        for r in refs:
            if r.ref_type == wanted and r.trace_id == trace_id:
                return r.span_id
    return NO_SPAN


def _link(ref: Ref) -> dict[str, Any]:
    ref_type = _REF_TYPE_NAMES.get(ref.ref_type, "follows_from")
    return {"trace_id": ref.trace_id, "span_id": ref.span_id, "trace_state": "",
            "attributes": [attr("opentracing.ref_type", ref_type)],
            "dropped_attributes_count": 0, "flags": 0}


def _event(log: Log) -> dict[str, Any]:
    fields = _as_map(log.fields)
    name = fields.pop("event") if isinstance(fields.get("event"), str) else ""
    return {"time_unix_nano": log.time_unix_nano, "name": name,
            "attributes": [attr(k, v) for k, v in fields.items()], "dropped_attributes_count": 0}
