"""OTLP trace requests (protobuf, or OTLP/JSON) -> span table. Pure functions, no I/O.

This is the ingest hot path. upb parses the request down to ScopeSpans with shadow message classes
that keep each span as raw bytes (``otlp_wire.py``); all spans of the request are then decoded together
with numpy (``otlp_spans.py``), attributes included (``otlp_attrs.py``). Each resource and scope is
converted once and repeated onto its spans with ``take``.

Spans with unusable IDs are dropped and counted (OTLP partial success); see ``otlp_spans.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2

from spanlake.collector.formats.anyvalue import pb_typed
from spanlake.collector.formats.attr_columns import TypedAttrs
from spanlake.collector.formats.errors import FormatError, TooManySpans, client_errors
from spanlake.collector.formats.otlp_json import decode_otlp_json
from spanlake.collector.formats.otlp_spans import decode_spans
from spanlake.collector.formats.otlp_wire import ShadowRequest
from spanlake.collector.formats.result import ConvertResult
from spanlake.collector.formats.span_columns import Resources, Scopes, assemble, rejection_message
from spanlake.storage.schema import ValueType

__all__ = ["ConvertResult", "decode_otlp_json", "decode_otlp_protobuf", "otlp_request_to_spans"]


@client_errors
def decode_otlp_protobuf(body: bytes, max_spans: int | None = None) -> ConvertResult:
    """An OTLP ``ExportTraceServiceRequest`` (or ``TracesData``: same layout) in protobuf bytes.

    Over ``max_spans`` spans raises ``TooManySpans`` before the spans are decoded.
    """
    try:
        request = ShadowRequest.FromString(body)
    except DecodeError as exc:
        raise FormatError(f"not a valid OTLP trace request in protobuf: {exc}") from None
    return _convert(request, max_spans)


def otlp_request_to_spans(request: trace_service_pb2.ExportTraceServiceRequest) -> ConvertResult:
    """An already parsed request. Transports holding the raw body should call
    ``decode_otlp_protobuf`` instead: re-serializing costs about as much as parsing."""
    return decode_otlp_protobuf(request.SerializeToString())


def _convert(request: Any, max_spans: int | None = None) -> ConvertResult:
    resources, scopes = Resources(), Scopes()
    chunks: list[bytes] = []
    lengths: list[int] = []
    scope_resource: list[int] = []
    scope_count: list[int] = []
    for resource_spans in request.resource_spans:
        resource = _add_resource(resources, resource_spans.resource, resource_spans.schema_url)
        for scope_spans in resource_spans.scope_spans:
            _add_scope(scopes, scope_spans.scope, scope_spans.schema_url)
            spans = list(scope_spans.spans)
            chunks.append(b"".join(spans))
            lengths.extend(map(len, spans))
            scope_resource.append(resource)
            scope_count.append(len(spans))
    if max_spans is not None and len(lengths) > max_spans:
        raise TooManySpans(f"the request has {len(lengths)} spans, over the limit of {max_spans} per "
                           "request (--max-spans-per-request); send smaller batches")
    columns, keep, rejected = decode_spans(b"".join(chunks), np.array(lengths, np.int64))
    scope_of_span = np.repeat(np.arange(len(scope_count), dtype=np.int32), scope_count)[keep]
    resource_of_span = np.array(scope_resource, np.int32)[scope_of_span]
    table = assemble(columns, resources, scopes, resource_of_span, scope_of_span)
    return ConvertResult(table, sum(rejected.values()), rejection_message(rejected))


def _add_resource(resources: Resources, raw: bytes, schema_url: str) -> int:
    try:
        resource = resource_pb2.Resource.FromString(raw)
    except DecodeError as exc:
        raise FormatError(f"resource: not a valid Resource message ({exc})") from None
    service = _add_typed(resources.attrs, resource.attributes)
    return resources.add(resource.dropped_attributes_count, schema_url, service)


def _add_scope(scopes: Scopes, raw: bytes, schema_url: str) -> int:
    try:
        scope = common_pb2.InstrumentationScope.FromString(raw)
    except DecodeError as exc:
        raise FormatError(f"scope: not a valid InstrumentationScope message ({exc})") from None
    _add_typed(scopes.attrs, scope.attributes)
    return scopes.add(scope.name, scope.version, scope.dropped_attributes_count, schema_url)


def _add_typed(attrs: TypedAttrs, key_values: Any) -> str:
    """Add a resource's or scope's attribute row; returns the first string ``service.name`` or ""."""
    service = None
    for kv in key_values:
        value_type, value = pb_typed(kv.value)
        attrs.add(kv.key, value_type, value)
        if service is None and kv.key == "service.name" and value_type == ValueType.STRING:
            service = value
    attrs.end_row()
    return service or ""
