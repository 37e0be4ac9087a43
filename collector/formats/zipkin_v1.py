"""Zipkin v1 ingest: ``POST /api/v1/spans`` bodies (JSON, or a TBinaryProtocol ``list<Span>``).

Zipkin v1 has no span kind or endpoints: a span carries "core" annotations (``cs``/``cr`` client send
and receive, ``sr``/``ss`` server receive and send, ``ms``/``mr`` message send and receive) and
address binary annotations (``ca``/``sa``/``ma``: client, server, broker; ``lc``: local component),
each with a host endpoint. They are converted to v2 ``ZipkinSpan`` s the way Zipkin's own v1 -> v2
converter does, then mapped like any v2 span:

- client annotations give a CLIENT span (local endpoint: the ``cs``/``cr`` host, remote: ``sa``),
  server ones a SERVER span (local: ``sr``/``ss`` host, remote: ``ca``), ``ms``/``mr`` a PRODUCER /
  CONSUMER span (remote: ``ma``);
- a span with both client and server annotations (one ID shared by both sides, as old Zipkin
  instrumentation reported it) becomes two spans: the client one, then a ``shared`` server one;
- without core annotations, ``sa`` alone means CLIENT, ``ca`` alone SERVER; the local endpoint is
  the ``lc`` host, else the first host seen;
- core annotations become the span's times (``timestamp``/``duration`` win when sent) and are
  dropped; other annotations become events; other binary annotations become typed tags.

The v1 JSON endpoint also takes v2-shaped spans (``localEndpoint``...), which some clients post there.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import pyarrow as pa

from spanlake.collector.formats.errors import FormatError
from spanlake.collector.formats.thrift import TType, read_binary_value
from spanlake.collector.formats.zipkin_model import Endpoint, ZipkinSpan, hex_id, ip_text, micros, to_table
from spanlake.collector.formats.zipkin_v2 import json_endpoint, load_json_list, parse_v2_json_span

_CORE = ("cs", "cr", "sr", "ss", "ms", "mr")
_ADDRESSES = ("ca", "sa", "ma")
_V2_ONLY_KEYS = ("localEndpoint", "remoteEndpoint", "tags", "kind", "shared")


@dataclass
class V1Annotation:
    timestamp_us: int
    value: str
    host: Endpoint | None = None


@dataclass
class V1BinaryAnnotation:
    key: str
    value: Any  # already typed: str, bool, int, float or bytes
    host: Endpoint | None = None


@dataclass
class V1Span:
    trace_id: bytes  # 16 bytes
    span_id: bytes
    parent_id: bytes | None = None
    name: str = ""
    timestamp_us: int | None = None
    duration_us: int | None = None
    debug: bool = False
    annotations: list[V1Annotation] = field(default_factory=list)
    binary_annotations: list[V1BinaryAnnotation] = field(default_factory=list)


def decode_zipkin_v1_json(body: bytes) -> pa.Table:
    """A Zipkin v1 JSON list of spans as a ``SPAN_SCHEMA`` table; ``FormatError`` if malformed."""
    spans: list[ZipkinSpan] = []
    for i, obj in enumerate(load_json_list(body)):
        where = f"span {i}"
        if isinstance(obj, dict) and any(k in obj for k in _V2_ONLY_KEYS):
            spans.append(parse_v2_json_span(obj, where))
        else:
            spans += v1_to_v2(_json_span(obj, where))
    return to_table(spans)


def decode_zipkin_v1_thrift(body: bytes) -> pa.Table:
    """A TBinaryProtocol ``list<Span>`` (zipkinCore.thrift) as a ``SPAN_SCHEMA`` table."""
    items = read_binary_value(body, TType.LIST)
    spans: list[ZipkinSpan] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise FormatError(f"span {i}: expected a zipkinCore Span struct")
        spans += v1_to_v2(_thrift_span(item, f"span {i}"))
    return to_table(spans)


# --- v1 -> v2 ---------------------------------------------------------------------------------------


def v1_to_v2(span: V1Span) -> list[ZipkinSpan]:
    """The v2 span(s) of one v1 span: two when one span ID carries both client and server sides."""
    core: dict[str, V1Annotation] = {}
    for a in span.annotations:
        if a.value in _CORE:
            core.setdefault(a.value, a)  # the first one counts, as in Zipkin
    addresses = {b.key: b.host for b in span.binary_annotations if b.key in _ADDRESSES and b.host}
    base = ZipkinSpan(
        trace_id=span.trace_id, span_id=span.span_id, parent_id=span.parent_id, name=span.name,
        timestamp_us=span.timestamp_us, duration_us=span.duration_us, debug=span.debug,
        annotations=[(a.timestamp_us, a.value) for a in span.annotations
                     if a.value and a.value not in _CORE],
        tags=_tags(span.binary_annotations),
    )
    client, server = "cs" in core or "cr" in core, "sr" in core or "ss" in core
    if client and server:
        server_span = _side(replace(base, annotations=[], tags={}, timestamp_us=None, duration_us=None),
                            "SERVER", core, "sr", "ss", addresses.get("ca"))
        server_span.shared = True
        return [_side(base, "CLIENT", core, "cs", "cr", addresses.get("sa")), server_span]
    if client:
        return [_side(base, "CLIENT", core, "cs", "cr", addresses.get("sa"))]
    if server:
        return [_side(base, "SERVER", core, "sr", "ss", addresses.get("ca"))]
    if "ms" in core or "mr" in core:
        kind, begin = ("PRODUCER", "ms") if "ms" in core else ("CONSUMER", "mr")
        return [_side(base, kind, core, begin, "", addresses.get("ma"))]
    return [_unkinded(base, span, addresses)]


def _side(base: ZipkinSpan, kind: str, core: dict[str, V1Annotation], begin: str, end: str,
          remote: Endpoint | None) -> ZipkinSpan:
    first, last = core.get(begin), core.get(end)
    start = base.timestamp_us if base.timestamp_us is not None else _stamp(first) or _stamp(last)
    duration = base.duration_us
    begin_us, end_us = _stamp(first), _stamp(last)
    if duration is None and begin_us and end_us:
        duration = end_us - begin_us
    local = (first.host if first and first.host else None) or (last.host if last else None)
    return replace(base, kind=kind, timestamp_us=start, duration_us=duration,
                   local=local or base.local, remote=remote)


def _unkinded(base: ZipkinSpan, span: V1Span, addresses: dict[str, Endpoint]) -> ZipkinSpan:
    lc = next((b.host for b in span.binary_annotations if b.key == "lc" and b.host), None)
    hosts = [a.host for a in span.annotations if a.host]
    hosts += [b.host for b in span.binary_annotations if b.host and b.key not in _ADDRESSES]
    local = lc or (hosts[0] if hosts else None)
    if "sa" in addresses:
        return replace(base, kind="CLIENT", local=local, remote=addresses["sa"])
    if "ca" in addresses:
        return replace(base, kind="SERVER", local=local, remote=addresses["ca"])
    return replace(base, local=local)


def _stamp(annotation: V1Annotation | None) -> int | None:
    return annotation.timestamp_us or None if annotation is not None else None


def _tags(binary: list[V1BinaryAnnotation]) -> dict[str, Any]:
    tags: dict[str, Any] = {}
    for b in binary:
        if b.key in _ADDRESSES or (b.key == "lc" and b.value in ("", b"")):
            continue  # addresses are endpoints, not tags; an empty "lc" only names the local host
        tags[b.key] = b.value
    return tags


# --- v1 JSON ----------------------------------------------------------------------------------------


def _json_span(obj: Any, where: str) -> V1Span:
    if not isinstance(obj, dict):
        raise FormatError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    trace_id = hex_id(obj.get("traceId"), 16, f"{where}: traceId")
    high = obj.get("traceIdHigh")
    if high is not None:  # some v1 clients send the upper 64 bits separately
        trace_id = hex_id(high, 8, f"{where}: traceIdHigh") + trace_id[8:]
    parent = obj.get("parentId")
    name = obj.get("name", "")
    if not isinstance(name, str):
        raise FormatError(f"{where}: name must be a string")
    return V1Span(
        trace_id=trace_id,
        span_id=hex_id(obj.get("id"), 8, f"{where}: id"),
        parent_id=hex_id(parent, 8, f"{where}: parentId") if parent is not None else None,
        name=name,
        timestamp_us=micros(obj.get("timestamp"), f"{where}: timestamp"),
        duration_us=micros(obj.get("duration"), f"{where}: duration"),
        debug=obj.get("debug") is True,
        annotations=[_json_annotation(a, f"{where}: annotation {j}")
                     for j, a in enumerate(_json_list(obj, "annotations", where))],
        binary_annotations=[_json_binary(b, f"{where}: binaryAnnotation {j}")
                            for j, b in enumerate(_json_list(obj, "binaryAnnotations", where))],
    )


def _json_list(obj: dict[str, Any], key: str, where: str) -> list[Any]:
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise FormatError(f"{where}: {key} must be a list")
    return value


def _json_annotation(obj: Any, where: str) -> V1Annotation:
    if not isinstance(obj, dict) or not isinstance(obj.get("value", ""), str):
        raise FormatError(f"{where}: expected an object with a string value")
    return V1Annotation(micros(obj.get("timestamp"), f"{where}: timestamp") or 0, obj.get("value", ""),
                        json_endpoint(obj.get("endpoint"), f"{where}: endpoint"))


_JSON_TYPED: dict[str, Callable[[Any], Any]] = {
    "BOOL": lambda v: v if isinstance(v, bool) else str(v).lower() == "true",
    "BYTES": lambda v: base64.b64decode(v, validate=True),
    "I16": int, "I32": int, "I64": int,
    "DOUBLE": float,
    "STRING": str,
}


def _json_binary(obj: Any, where: str) -> V1BinaryAnnotation:
    if not isinstance(obj, dict) or not isinstance(obj.get("key"), str):
        raise FormatError(f"{where}: expected an object with a string key")
    value, kind = obj.get("value"), obj.get("type")
    if kind is not None:
        convert = _JSON_TYPED.get(str(kind).upper())
        if convert is None:
            raise FormatError(f"{where}: unknown type {kind!r}")
        try:
            value = convert(value)
        except (ValueError, TypeError):
            raise FormatError(f"{where}: value {value!r} is not a {kind}") from None
    elif value is not None and not isinstance(value, str | bool | int | float):
        raise FormatError(f"{where}: value must be a string, number or boolean")
    return V1BinaryAnnotation(obj["key"], "" if value is None else value,
                              json_endpoint(obj.get("endpoint"), f"{where}: endpoint"))


# --- v1 Thrift (zipkinCore.thrift field ids) -------------------------------------------------------


def _thrift_span(d: dict[int, Any], where: str) -> V1Span:
    low, span_id = d.get(1), d.get(4)
    if not isinstance(low, int) or not isinstance(span_id, int):
        raise FormatError(f"{where}: trace_id (field 1) and id (field 4) must be i64")
    high = d.get(12)
    parent = d.get(5)
    return V1Span(
        trace_id=_u64(high if isinstance(high, int) else 0) + _u64(low),
        span_id=_u64(span_id),
        parent_id=_u64(parent) if isinstance(parent, int) and parent else None,
        name=_thrift_text(d.get(3), f"{where}: name"),
        timestamp_us=micros(d.get(10), f"{where}: timestamp"),
        duration_us=micros(d.get(11), f"{where}: duration"),
        debug=d.get(9) is True,
        annotations=[_thrift_annotation(a, f"{where}: annotation {j}")
                     for j, a in enumerate(_thrift_list(d.get(6), where))],
        binary_annotations=[_thrift_binary(b, f"{where}: binary_annotation {j}")
                            for j, b in enumerate(_thrift_list(d.get(8), where))],
    )


def _thrift_list(value: Any, where: str) -> list[dict[int, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise FormatError(f"{where}: expected a list of structs")
    return value


def _thrift_annotation(d: dict[int, Any], where: str) -> V1Annotation:
    ts = d.get(1, 0)
    if not isinstance(ts, int):
        raise FormatError(f"{where}: timestamp must be i64")
    return V1Annotation(max(ts, 0), _thrift_text(d.get(2), f"{where}: value"),
                        _thrift_endpoint(d.get(3), f"{where}: host"))


# zipkinCore.thrift AnnotationType: how the bytes of a binary annotation value are encoded.
_THRIFT_TYPES = ("BOOL", "BYTES", "I16", "I32", "I64", "DOUBLE", "STRING")
_FIXED = {"BOOL": ">?", "I16": ">h", "I32": ">i", "I64": ">q", "DOUBLE": ">d"}


def _thrift_binary(d: dict[int, Any], where: str) -> V1BinaryAnnotation:
    raw, kind = d.get(2, b""), d.get(3, 6)
    if not isinstance(raw, bytes) or not isinstance(kind, int) or not 0 <= kind < len(_THRIFT_TYPES):
        raise FormatError(f"{where}: value must be binary and annotation_type one of 0..6")
    return V1BinaryAnnotation(_thrift_text(d.get(1), f"{where}: key"),
                              _binary_value(raw, _THRIFT_TYPES[kind], where),
                              _thrift_endpoint(d.get(4), f"{where}: host"))


def _binary_value(raw: bytes, kind: str, where: str) -> Any:
    if kind == "BYTES":
        return raw
    if kind == "STRING":
        return _thrift_text(raw, where)
    fmt = _FIXED[kind]
    if len(raw) != struct.calcsize(fmt):
        # Jaeger keeps such a tag with an explanation rather than failing the whole batch
        # (zipkin-thrift-v1-to-domain/domain_03.json); a client can see what it sent wrong.
        return f"cannot parse Zipkin {kind} value {base64.b64encode(raw).decode()}: " \
               f"need {struct.calcsize(fmt)} bytes, got {len(raw)}"
    return struct.unpack(fmt, raw)[0]


def _thrift_endpoint(d: Any, where: str) -> Endpoint | None:
    if d is None:
        return None
    if not isinstance(d, dict):
        raise FormatError(f"{where}: expected an Endpoint struct")
    ipv4, port, name = d.get(1), d.get(2), d.get(3)
    return Endpoint(
        service_name=_thrift_text(name, f"{where}: service_name") if name is not None else None,
        ipv4=ip_text(ipv4 & 0xFFFFFFFF) if isinstance(ipv4, int) and ipv4 else None,
        ipv6=_thrift_ipv6(d.get(4)),
        port=port & 0xFFFF if isinstance(port, int) and port else None,
    )


def _thrift_ipv6(raw: Any) -> str | None:
    """16 address bytes; some clients put the address text there instead (Jaeger's fixtures do)."""
    if not isinstance(raw, bytes) or not raw:
        return None
    if len(raw) == 16:
        return ip_text(raw)
    try:
        return ip_text(raw.decode("ascii"))
    except UnicodeDecodeError:
        return None  # not an address in either form: drop it rather than the whole batch


def _thrift_text(value: Any, where: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, bytes):
        raise FormatError(f"{where}: expected a string")
    try:
        return value.decode()
    except UnicodeDecodeError:
        raise FormatError(f"{where}: not valid UTF-8") from None


def _u64(value: int) -> bytes:
    return (value & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "big")
