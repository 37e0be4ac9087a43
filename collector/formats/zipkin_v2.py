"""Zipkin v2 ingest: ``POST /api/v2/spans`` bodies (zipkin2-api.yaml) -> ``SPAN_SCHEMA``.

JSON is a list of spans with hex IDs (``"traceId":"2"`` is left-padded); protobuf is zipkin.proto's
``ListOfSpans`` with raw ID bytes. Both become ``ZipkinSpan`` and share one mapping
(``zipkin_model.py``).
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
from google.protobuf.message import DecodeError

from spanlake.collector.formats.errors import FormatError
from spanlake.collector.formats.proto.zipkin import ListOfSpans
from spanlake.collector.formats.zipkin_model import (
    Endpoint,
    ZipkinSpan,
    hex_id,
    ip_text,
    micros,
    require_kind,
    to_table,
    trace_id_bytes,
)

_PROTO_KINDS = {1: "CLIENT", 2: "SERVER", 3: "PRODUCER", 4: "CONSUMER"}


def decode_zipkin_v2_json(body: bytes) -> pa.Table:
    """A Zipkin v2 JSON list of spans as a ``SPAN_SCHEMA`` table; ``FormatError`` if malformed."""
    return to_table(parse_v2_json_spans(load_json_list(body)))


def decode_zipkin_v2_proto(body: bytes) -> pa.Table:
    """A zipkin.proto ``ListOfSpans`` as a ``SPAN_SCHEMA`` table; ``FormatError`` if malformed."""
    message = ListOfSpans()
    try:
        message.ParseFromString(body)
    except DecodeError as exc:
        raise FormatError(f"not a Zipkin protobuf ListOfSpans: {exc}") from None
    return to_table(_proto_span(s, f"span {i}") for i, s in enumerate(message.spans))


def load_json_list(body: bytes) -> list[Any]:
    """The top-level JSON array of a Zipkin body (v1 and v2 both send one)."""
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(f"invalid JSON: {exc}") from None
    if not isinstance(doc, list):
        raise FormatError(f"expected a JSON array of spans, got {type(doc).__name__}")
    return doc


def parse_v2_json_spans(doc: list[Any]) -> list[ZipkinSpan]:
    return [parse_v2_json_span(obj, f"span {i}") for i, obj in enumerate(doc)]


def parse_v2_json_span(obj: Any, where: str) -> ZipkinSpan:
    if not isinstance(obj, dict):
        raise FormatError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    parent = obj.get("parentId")
    return ZipkinSpan(
        trace_id=hex_id(obj.get("traceId"), 16, f"{where}: traceId"),
        span_id=hex_id(obj.get("id"), 8, f"{where}: id"),
        parent_id=hex_id(parent, 8, f"{where}: parentId") if parent is not None else None,
        name=_text(obj.get("name"), f"{where}: name"),
        kind=require_kind(obj.get("kind"), where),
        timestamp_us=micros(obj.get("timestamp"), f"{where}: timestamp"),
        duration_us=micros(obj.get("duration"), f"{where}: duration"),
        local=json_endpoint(obj.get("localEndpoint"), f"{where}: localEndpoint"),
        remote=json_endpoint(obj.get("remoteEndpoint"), f"{where}: remoteEndpoint"),
        annotations=_json_annotations(obj.get("annotations"), where),
        tags=_json_tags(obj.get("tags"), where),
        debug=obj.get("debug") is True,
        shared=obj.get("shared") is True,
    )


def json_endpoint(obj: Any, where: str) -> Endpoint | None:
    """A JSON endpoint (v2 ``localEndpoint``; v1 annotation ``endpoint`` has the same shape)."""
    if obj is None:
        return None
    if not isinstance(obj, dict):
        raise FormatError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    port = obj.get("port")
    if port is not None and (isinstance(port, bool) or not isinstance(port, int)):
        raise FormatError(f"{where}: port must be an integer, got {port!r}")
    name = obj.get("serviceName")
    return Endpoint(
        service_name=_text(name, f"{where}: serviceName") if name is not None else None,
        ipv4=_json_ip(obj.get("ipv4")),
        ipv6=_json_ip(obj.get("ipv6")),
        port=port or None,
    )


def _json_ip(value: Any) -> str | None:
    # A non-string address is as unparseable as a bad string one: dropped, the span kept (Zipkin).
    return ip_text(value) if isinstance(value, str) else None


def _json_annotations(items: Any, where: str) -> list[tuple[int, str]]:
    if items is None:
        return []
    if not isinstance(items, list):
        raise FormatError(f"{where}: annotations must be a list")
    out = []
    for j, item in enumerate(items):
        if not isinstance(item, dict):
            raise FormatError(f"{where}: annotation {j}: expected a JSON object")
        ts = micros(item.get("timestamp"), f"{where}: annotation {j}: timestamp") or 0
        out.append((ts, _text(item.get("value"), f"{where}: annotation {j}: value")))
    return out


def _json_tags(tags: Any, where: str) -> dict[str, Any]:
    if tags is None:
        return {}
    if not isinstance(tags, dict):
        raise FormatError(f"{where}: tags must be a JSON object of strings")
    # The spec says string values; some clients send numbers or booleans. Keep them, as text, since
    # Zipkin's own server stores every tag as a string.
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in tags.items()}


def _text(value: Any, where: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise FormatError(f"{where}: expected a string, got {value!r}")
    return value


def _proto_span(span: Any, where: str) -> ZipkinSpan:
    if len(span.id) != 8:
        raise FormatError(f"{where}: id must be 8 bytes, got {len(span.id)}")
    if span.parent_id and len(span.parent_id) != 8:
        raise FormatError(f"{where}: parent_id must be 8 bytes, got {len(span.parent_id)}")
    return ZipkinSpan(
        trace_id=trace_id_bytes(span.trace_id, where),
        span_id=span.id,
        parent_id=span.parent_id or None,
        name=span.name,
        kind=_PROTO_KINDS.get(span.kind),
        timestamp_us=span.timestamp or None,
        duration_us=span.duration or None,
        local=_proto_endpoint(span, "local_endpoint"),
        remote=_proto_endpoint(span, "remote_endpoint"),
        annotations=[(a.timestamp, a.value) for a in span.annotations],
        tags=dict(span.tags),
        debug=span.debug,
        shared=span.shared,
    )


def _proto_endpoint(span: Any, name: str) -> Endpoint | None:
    if not span.HasField(name):
        return None
    ep = getattr(span, name)
    return Endpoint(
        # proto3 cannot tell an empty service name from a missing one; "missing" is the safer reading.
        service_name=ep.service_name or None,
        # An address of the wrong length is unparseable: dropped, the span kept (as in JSON).
        ipv4=ip_text(ep.ipv4) if len(ep.ipv4) == 4 else None,
        ipv6=ip_text(ep.ipv6) if len(ep.ipv6) == 16 else None,
        port=ep.port & 0xFFFF or None,
    )
