"""OTLP trace requests (protobuf, or OTLP/JSON) -> span table. Pure functions, no I/O.

This is the ingest hot path. The protobuf body is parsed once by upb into shadow message classes that
keep attributes as raw bytes (``otlp_wire.py``); span fields are read in one loop into column lists;
all attributes of the request are then decoded together (``otlp_attrs.py``). Each resource and scope is
converted once and repeated onto its spans with ``take``.

Spans with unusable IDs are dropped and counted (OTLP partial success), the rest are kept: a trace ID
must be 16 bytes and not all zero, a span ID 8 bytes and not all zero, a parent span ID empty or 8
bytes (all zero means "no parent", as in the collector's pdata), a link's IDs empty or full length.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2

from collector.formats.anyvalue import pb_typed
from collector.formats.attr_columns import TypedAttrs
from collector.formats.errors import FormatError
from collector.formats.otlp_attrs import RawAttrs
from collector.formats.otlp_json import decode_otlp_json
from collector.formats.otlp_wire import ShadowRequest
from collector.formats.result import ConvertResult
from collector.formats.span_columns import ZERO_SPAN_ID, ZERO_TRACE_ID, SpanColumns
from storage.schema import ValueType

__all__ = ["ConvertResult", "decode_otlp_json", "decode_otlp_protobuf", "otlp_request_to_spans"]

BAD_TRACE_ID = "an invalid trace ID (must be 16 bytes, not all zero)"
BAD_SPAN_ID = "an invalid span ID (must be 8 bytes, not all zero)"
BAD_PARENT_ID = "an invalid parent span ID (must be empty or 8 bytes)"
BAD_LINK_ID = "an invalid link (trace ID must be empty or 16 bytes, span ID empty or 8 bytes)"


def decode_otlp_protobuf(body: bytes) -> ConvertResult:
    """An OTLP ``ExportTraceServiceRequest`` (or ``TracesData``: same layout) in protobuf bytes."""
    try:
        request = ShadowRequest.FromString(body)
    except DecodeError as exc:
        raise FormatError(f"not a valid OTLP trace request in protobuf: {exc}") from None
    return _convert(request)


def otlp_request_to_spans(request: trace_service_pb2.ExportTraceServiceRequest) -> ConvertResult:
    """An already parsed request. Transports holding the raw body should call
    ``decode_otlp_protobuf`` instead: re-serializing costs about as much as parsing."""
    return decode_otlp_protobuf(request.SerializeToString())


def _convert(request: Any) -> ConvertResult:
    cols: SpanColumns[RawAttrs] = SpanColumns(RawAttrs(), RawAttrs(), RawAttrs())
    for resource_spans in request.resource_spans:
        resource = _add_resource(cols, resource_spans.resource, resource_spans.schema_url)
        for scope_spans in resource_spans.scope_spans:
            scope = _add_scope(cols, scope_spans.scope, scope_spans.schema_url)
            _add_spans(cols, scope_spans.spans, resource, scope)
    return ConvertResult(cols.table(), sum(cols.rejected.values()), cols.message())


def _add_resource(cols: SpanColumns[RawAttrs], raw: bytes, schema_url: str) -> int:
    try:
        resource = resource_pb2.Resource.FromString(raw)
    except DecodeError as exc:
        raise FormatError(f"resource: not a valid Resource message ({exc})") from None
    service = _add_typed(cols.resources.attrs, resource.attributes)
    return cols.resources.add(resource.dropped_attributes_count, schema_url, service)


def _add_scope(cols: SpanColumns[RawAttrs], raw: bytes, schema_url: str) -> int:
    try:
        scope = common_pb2.InstrumentationScope.FromString(raw)
    except DecodeError as exc:
        raise FormatError(f"scope: not a valid InstrumentationScope message ({exc})") from None
    _add_typed(cols.scopes.attrs, scope.attributes)
    return cols.scopes.add(scope.name, scope.version, scope.dropped_attributes_count, schema_url)


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


def _add_spans(cols: SpanColumns[RawAttrs], spans: Any, resource: int, scope: int) -> None:
    # Bound methods in locals: this loop runs once per span, so attribute lookups add up.
    rejected = cols.rejected
    raw = cols.span_attrs
    records, attr_offsets = raw.records.extend, raw.offsets.append
    kept = len(cols.name)
    events, links = cols.events, cols.links
    event_offsets, link_offsets = events.offsets.append, links.offsets.append
    appends: list[Callable[[Any], None]] = [
        cols.trace_id.append, cols.span_id.append, cols.parent_span_id.append,
        cols.trace_state.append, cols.flags.append, cols.name.append, cols.kind.append,
        cols.start.append, cols.end.append, cols.status_code.append,
        cols.status_message.append, cols.dropped_attributes.append, cols.dropped_events.append,
        cols.dropped_links.append,
    ]
    (trace_ids, span_ids, parents, states, flags, names, kinds, starts, ends, codes, messages,
     dropped_attrs, dropped_events, dropped_links) = appends
    for span in spans:
        trace_id, span_id, parent = span.trace_id, span.span_id, span.parent_span_id
        if len(trace_id) != 16 or trace_id == ZERO_TRACE_ID:
            rejected[BAD_TRACE_ID] += 1
            continue
        if len(span_id) != 8 or span_id == ZERO_SPAN_ID:
            rejected[BAD_SPAN_ID] += 1
            continue
        if parent and len(parent) != 8:
            rejected[BAD_PARENT_ID] += 1
            continue
        span_links = span.links
        if span_links and not _links_valid(span_links):
            rejected[BAD_LINK_ID] += 1
            continue
        trace_ids(trace_id)
        span_ids(span_id)
        parents(parent if parent and parent != ZERO_SPAN_ID else None)
        states(span.trace_state)
        flags(span.flags)
        names(span.name)
        kinds(span.kind)
        starts(span.start_time_unix_nano)
        ends(span.end_time_unix_nano)
        status = span.status
        codes(status.code)
        messages(status.message)
        records(span.attributes)
        attr_offsets(len(raw.records))
        dropped_attrs(span.dropped_attributes_count)
        dropped_events(span.dropped_events_count)
        dropped_links(span.dropped_links_count)
        span_events = span.events
        if span_events:
            _add_events(cols, span_events)
        event_offsets(len(events.values["name"]))
        if span_links:
            _add_links(cols, span_links)
        link_offsets(len(links.values["flags"]))
    cols.runs.append((resource, scope, len(cols.name) - kept))


def _links_valid(links: Any) -> bool:
    for link in links:
        if len(link.trace_id) not in (0, 16) or len(link.span_id) not in (0, 8):
            return False
    return True


def _add_events(cols: SpanColumns[RawAttrs], events: Any) -> None:
    values, attrs = cols.events.values, cols.events.attrs
    for event in events:
        values["time_unix_nano"].append(event.time_unix_nano)
        values["name"].append(event.name)
        values["dropped_attributes_count"].append(event.dropped_attributes_count)
        attrs.add_row(event.attributes)


def _add_links(cols: SpanColumns[RawAttrs], links: Any) -> None:
    values, attrs = cols.links.values, cols.links.attrs
    for link in links:
        # pdata reads an empty link ID as the all-zero ID; the column is fixed width.
        values["trace_id"].append(link.trace_id or ZERO_TRACE_ID)
        values["span_id"].append(link.span_id or ZERO_SPAN_ID)
        values["trace_state"].append(link.trace_state)
        values["dropped_attributes_count"].append(link.dropped_attributes_count)
        values["flags"].append(link.flags)
        attrs.add_row(link.attributes)
