"""Jaeger api_v2 protobuf (``CollectorService/PostSpans``) -> spans in ``SPAN_SCHEMA``.

A span's own ``process`` overrides the batch's (clients that batch spans of several processes set
it). BINARY tags stay bytes attributes, as Jaeger's proto translator keeps them.
"""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa
from google.protobuf.message import DecodeError

from spanlake.collector.formats import jaeger_mapping as jm
from spanlake.collector.formats.errors import FormatError, client_errors
from spanlake.collector.formats.proto import collector_pb2, model_pb2
from spanlake.storage.rows import spans_table

_NANOS_PER_SECOND = 1_000_000_000


@client_errors
def decode_post_spans_request(data: bytes) -> pa.Table:
    """A serialized ``PostSpansRequest``."""
    request = collector_pb2.PostSpansRequest()
    try:
        request.ParseFromString(data)
    except (DecodeError, ValueError) as exc:
        raise FormatError(f"PostSpansRequest: not a valid protobuf message: {exc}") from None
    return post_spans_to_spans(request)


def post_spans_to_spans(request: collector_pb2.PostSpansRequest) -> pa.Table:
    """The spans of a parsed ``PostSpansRequest``."""
    return batch_to_spans(request.batch)


def batch_to_spans(batch: model_pb2.Batch) -> pa.Table:
    """The spans of an api_v2 ``Batch``."""
    default = _process(batch.process) if batch.HasField("process") else jm.Process("")
    rows = [jm.span_row(_span(s, default, f"batch.spans[{i}]")) for i, s in enumerate(batch.spans)]
    return spans_table(rows)


def _process(p: model_pb2.Process) -> jm.Process:
    return jm.Process(p.service_name, _tags(p.tags))


def _tags(kvs: Iterable[model_pb2.KeyValue]) -> jm.Tags:
    return [(kv.key, _value(kv)) for kv in kvs]


def _value(kv: model_pb2.KeyValue) -> object:
    t = kv.v_type
    if t == model_pb2.STRING:
        return kv.v_str
    if t == model_pb2.BOOL:
        return kv.v_bool
    if t == model_pb2.INT64:
        return kv.v_int64
    if t == model_pb2.FLOAT64:
        return kv.v_float64
    if t == model_pb2.BINARY:
        return kv.v_binary
    return f"<Unknown Jaeger TagType {t}>"


def _id(raw: bytes, size: int, where: str) -> bytes:
    # Jaeger accepts short IDs; an empty one is "absent" (all zeros). Longer than the size is wrong.
    if len(raw) > size:
        raise FormatError(f"{where} is {len(raw)} bytes, at most {size} expected")
    return raw.rjust(size, b"\0")


def _span(s: model_pb2.Span, default: jm.Process, where: str) -> jm.Span:
    trace_id = _id(s.trace_id, 16, f"{where}.trace_id")
    if trace_id == bytes(16):
        raise FormatError(f"{where}.trace_id is missing")
    start = s.start_time.seconds * _NANOS_PER_SECOND + s.start_time.nanos
    duration = s.duration.seconds * _NANOS_PER_SECOND + s.duration.nanos
    return jm.Span(
        trace_id=trace_id,
        span_id=_id(s.span_id, 8, f"{where}.span_id"),
        parent_span_id=jm.NO_SPAN,
        name=s.operation_name,
        start_unix_nano=start,
        duration_nano=duration,
        process=_process(s.process) if s.HasField("process") else default,
        flags=s.flags,
        references=[jm.Ref(r.ref_type, _id(r.trace_id, 16, f"{where}.references[{i}].trace_id"),
                           _id(r.span_id, 8, f"{where}.references[{i}].span_id"))
                    for i, r in enumerate(s.references)],
        tags=_tags(s.tags),
        logs=[jm.Log(lg.timestamp.seconds * _NANOS_PER_SECOND + lg.timestamp.nanos, _tags(lg.fields))
              for lg in s.logs],
        warnings=list(s.warnings),
    )
