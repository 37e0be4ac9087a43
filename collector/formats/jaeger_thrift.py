"""Jaeger Thrift (``jaeger.thrift`` Batch, ``agent.thrift`` emitBatch) -> spans in ``SPAN_SCHEMA``.

Three entry points, one per transport: ``decode_thrift_binary_batch`` (HTTP ``POST /api/traces``: a
bare TBinaryProtocol Batch), ``decode_agent_compact`` (UDP 6831) and ``decode_agent_binary`` (UDP 6832),
both an ``Agent.emitBatch`` oneway message. ``batch_to_spans`` converts a generically decoded Batch.
Field numbers are from ``jaeger-idl thrift/jaeger.thrift``.
"""

from __future__ import annotations

import base64
from typing import Any

import pyarrow as pa

from spanlake.collector.formats import jaeger_mapping as jm
from spanlake.collector.formats.errors import FormatError, client_errors
from spanlake.collector.formats.thrift import (
    Message,
    MessageType,
    read_binary_message,
    read_binary_struct,
    read_compact_message,
)
from spanlake.storage.rows import spans_table

# TagType enum of jaeger.thrift (not the proto numbering).
TAG_STRING, TAG_DOUBLE, TAG_BOOL, TAG_LONG, TAG_BINARY = 0, 1, 2, 3, 4
_MASK64 = (1 << 64) - 1
# Jaeger's sanitizer placeholders for text that is not valid UTF-8.
INVALID_SPAN_NAME, INVALID_TAG_KEY = "invalid-span-name", "invalid-tag-key"


@client_errors
def decode_thrift_binary_batch(data: bytes, *, binary_as_base64: bool = True) -> pa.Table:
    """A TBinaryProtocol ``jaeger.Batch`` (the body Jaeger clients POST to ``/api/traces``)."""
    return batch_to_spans(read_binary_struct(data), binary_as_base64=binary_as_base64)


@client_errors
def decode_agent_compact(data: bytes, *, binary_as_base64: bool = True) -> pa.Table:
    """A TCompactProtocol ``Agent.emitBatch`` message (what clients send to UDP 6831)."""
    return _emit_batch(read_compact_message(data), binary_as_base64)


@client_errors
def decode_agent_binary(data: bytes, *, binary_as_base64: bool = True) -> pa.Table:
    """A TBinaryProtocol ``Agent.emitBatch`` message (what clients send to UDP 6832)."""
    return _emit_batch(read_binary_message(data), binary_as_base64)


def _emit_batch(message: Message, binary_as_base64: bool) -> pa.Table:
    if message.name != "emitBatch":
        raise FormatError(f"unsupported agent method {message.name!r} (only emitBatch is accepted)")
    if message.type not in (MessageType.ONEWAY, MessageType.CALL):
        raise FormatError(f"emitBatch: unexpected message type {message.type}")
    batch = message.args.get(1)
    if not isinstance(batch, dict):
        raise FormatError("emitBatch: argument 1 (batch) is missing or not a struct")
    return batch_to_spans(batch, binary_as_base64=binary_as_base64)


def batch_to_spans(batch: dict[int, Any], *, binary_as_base64: bool = True) -> pa.Table:
    """A generically decoded ``jaeger.Batch`` (field id -> value) as spans.

    ``binary_as_base64`` follows Jaeger v2's Thrift receivers, which turn BINARY tags into base64
    strings; pass False to keep them as bytes attributes (what Jaeger v1's domain model did).
    """
    process = _process(_get(batch, 1, dict, "batch.process"), binary_as_base64)
    spans = _get(batch, 2, list, "batch.spans")
    rows = []
    for i, raw in enumerate(spans):
        if not isinstance(raw, dict):
            raise FormatError(f"batch.spans[{i}] is not a struct")
        rows.append(jm.span_row(_span(raw, process, f"batch.spans[{i}]", binary_as_base64)))
    return spans_table(rows)


def _get(obj: dict[int, Any], fid: int, kind: type, where: str, default: Any = None) -> Any:
    value = obj.get(fid, default)
    if value is None:
        raise FormatError(f"{where} is required")
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise FormatError(f"{where} has the wrong type")
    return value


def _text(obj: dict[int, Any], fid: int, where: str, default: bytes | None = None,
          invalid: str | None = None) -> str:
    raw = _get(obj, fid, bytes, where, default)
    try:
        return str(raw.decode())
    except UnicodeDecodeError:
        # Jaeger's UTF-8 sanitizer keeps the span under a placeholder rather than dropping the batch.
        if invalid is not None:
            return invalid
        raise FormatError(f"{where} is not valid UTF-8") from None


def _process(raw: dict[int, Any], b64: bool) -> jm.Process:
    return jm.Process(_text(raw, 1, "batch.process.serviceName", b""),
                      _tags(raw.get(2) or [], "batch.process.tags", b64))


def _tags(raw: Any, where: str, b64: bool) -> jm.Tags:
    if not isinstance(raw, list):
        raise FormatError(f"{where} is not a list")
    out: jm.Tags = []
    for i, t in enumerate(raw):
        fast = _well_formed_tag(t)
        out.append(fast if fast is not None else _tag(t, f"{where}[{i}]", b64))
    return out


def _well_formed_tag(raw: Any) -> tuple[str, Any] | None:
    """The common case without building error context: None sends the tag down the careful path."""
    if type(raw) is not dict:
        return None
    try:
        key = raw[1].decode()
        vtype = raw[2]
        if type(vtype) is not int:
            return None
        if vtype == TAG_STRING:
            return key, raw[3].decode()
        if vtype == TAG_LONG and type(raw[6]) is int:
            return key, raw[6]
        if vtype == TAG_BOOL and type(raw[5]) is bool:
            return key, raw[5]
        if vtype == TAG_DOUBLE and type(raw[4]) is float:
            return key, raw[4]
    except (KeyError, TypeError, AttributeError, UnicodeDecodeError):
        pass
    return None


def _tag(raw: Any, where: str, b64: bool) -> tuple[str, Any]:
    if not isinstance(raw, dict):
        raise FormatError(f"{where} is not a struct")
    key = _text(raw, 1, f"{where}.key", invalid=INVALID_TAG_KEY)
    vtype = _get(raw, 2, int, f"{where}.vType")
    # Absent optional members read as the zero value, as Thrift's Go getters do.
    if vtype == TAG_STRING:
        value = _get(raw, 3, bytes, f"{where}.vStr", b"")
        try:
            return key, value.decode()
        except UnicodeDecodeError:  # as Jaeger's sanitizer: an invalid string is kept as bytes
            return key, value
    if vtype == TAG_DOUBLE:
        return key, float(_get(raw, 4, float, f"{where}.vDouble", 0.0))
    if vtype == TAG_BOOL:
        return key, bool(_get(raw, 5, bool, f"{where}.vBool", False))
    if vtype == TAG_LONG:
        return key, int(_get(raw, 6, int, f"{where}.vLong", 0))
    if vtype == TAG_BINARY:
        blob = _get(raw, 7, bytes, f"{where}.vBinary", b"")
        return key, base64.b64encode(blob).decode() if b64 else blob
    return key, f"<Unknown Jaeger TagType {vtype}>"


def _trace_id(obj: dict[int, Any], low: int, high: int, where: str) -> bytes:
    lo: int = _get(obj, low, int, f"{where}.traceIdLow")
    hi: int = _get(obj, high, int, f"{where}.traceIdHigh", 0)
    return (hi & _MASK64).to_bytes(8, "big") + (lo & _MASK64).to_bytes(8, "big")


def _span_id(obj: dict[int, Any], fid: int, where: str, default: int | None = None) -> bytes:
    return int(_get(obj, fid, int, where, default) & _MASK64).to_bytes(8, "big")


def _span(raw: dict[int, Any], process: jm.Process, where: str, b64: bool) -> jm.Span:
    start_us = _get(raw, 8, int, f"{where}.startTime", 0)
    duration_us = _get(raw, 9, int, f"{where}.duration", 0)
    return jm.Span(
        trace_id=_trace_id(raw, 1, 2, where),
        span_id=_span_id(raw, 3, f"{where}.spanId"),
        parent_span_id=_span_id(raw, 4, f"{where}.parentSpanId", 0),
        name=_text(raw, 5, f"{where}.operationName", b"", invalid=INVALID_SPAN_NAME),
        references=[_ref(r, f"{where}.references[{i}]") for i, r in enumerate(_list(raw, 6, where))],
        flags=_get(raw, 7, int, f"{where}.flags", 0),
        start_unix_nano=start_us * 1000,
        duration_nano=duration_us * 1000,
        tags=_tags(raw.get(10) or [], f"{where}.tags", b64),
        logs=[_log(lg, f"{where}.logs[{i}]", b64) for i, lg in enumerate(_list(raw, 11, where))],
        process=process,
    )


def _list(raw: dict[int, Any], fid: int, where: str) -> list[Any]:
    value = raw.get(fid) or []
    if not isinstance(value, list):
        raise FormatError(f"{where}: field {fid} is not a list")
    return value


def _ref(raw: Any, where: str) -> jm.Ref:
    if not isinstance(raw, dict):
        raise FormatError(f"{where} is not a struct")
    return jm.Ref(_get(raw, 1, int, f"{where}.refType", 0), _trace_id(raw, 2, 3, where),
                  _span_id(raw, 4, f"{where}.spanId"))


def _log(raw: Any, where: str, b64: bool) -> jm.Log:
    if not isinstance(raw, dict):
        raise FormatError(f"{where} is not a struct")
    return jm.Log(_get(raw, 1, int, f"{where}.timestamp", 0) * 1000,
                  _tags(raw.get(2) or [], f"{where}.fields", b64))
