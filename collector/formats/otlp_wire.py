"""Shadow message classes for reading OTLP trace protobuf quickly.

They have the wire layout of ``opentelemetry/proto/trace/v1/trace.proto`` (same field numbers and wire
types, so any valid OTLP request parses), but declare every ``repeated KeyValue attributes`` field as
``repeated bytes`` and the resource / scope as ``bytes``. Reading attributes through upb's message
objects costs about a microsecond per attribute in CPython (a wrapper object per KeyValue and per
AnyValue); as raw bytes, all attributes of a request are decoded at once with numpy
(``collector/formats/otlp_attrs.py``), which is what keeps conversion within the ingest budget.

Field numbers are taken from opentelemetry-proto v1.11.0 (``trace.proto``, ``trace_service.proto``).
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto
_PACKAGE = "spanlake.otlpshadow"

# (name, number, type, repeated, message type name)
_Field = tuple[str, int, int, bool, str]

_MESSAGES: dict[str, list[_Field]] = {
    "Request": [("resource_spans", 1, _F.TYPE_MESSAGE, True, "ResourceSpans")],
    "ResourceSpans": [
        ("resource", 1, _F.TYPE_BYTES, False, ""),  # a Resource, decoded once per ResourceSpans
        ("scope_spans", 2, _F.TYPE_MESSAGE, True, "ScopeSpans"),
        ("schema_url", 3, _F.TYPE_STRING, False, ""),
    ],
    "ScopeSpans": [
        ("scope", 1, _F.TYPE_BYTES, False, ""),  # an InstrumentationScope
        ("spans", 2, _F.TYPE_MESSAGE, True, "Span"),
        ("schema_url", 3, _F.TYPE_STRING, False, ""),
    ],
    "Span": [
        ("trace_id", 1, _F.TYPE_BYTES, False, ""),
        ("span_id", 2, _F.TYPE_BYTES, False, ""),
        ("trace_state", 3, _F.TYPE_STRING, False, ""),
        ("parent_span_id", 4, _F.TYPE_BYTES, False, ""),
        ("name", 5, _F.TYPE_STRING, False, ""),
        ("kind", 6, _F.TYPE_INT32, False, ""),  # an enum on the wire is an int32 varint
        ("start_time_unix_nano", 7, _F.TYPE_FIXED64, False, ""),
        ("end_time_unix_nano", 8, _F.TYPE_FIXED64, False, ""),
        ("attributes", 9, _F.TYPE_BYTES, True, ""),  # serialized KeyValue messages
        ("dropped_attributes_count", 10, _F.TYPE_UINT32, False, ""),
        ("events", 11, _F.TYPE_MESSAGE, True, "Event"),
        ("dropped_events_count", 12, _F.TYPE_UINT32, False, ""),
        ("links", 13, _F.TYPE_MESSAGE, True, "Link"),
        ("dropped_links_count", 14, _F.TYPE_UINT32, False, ""),
        ("status", 15, _F.TYPE_MESSAGE, False, "Status"),
        ("flags", 16, _F.TYPE_FIXED32, False, ""),
    ],
    "Event": [
        ("time_unix_nano", 1, _F.TYPE_FIXED64, False, ""),
        ("name", 2, _F.TYPE_STRING, False, ""),
        ("attributes", 3, _F.TYPE_BYTES, True, ""),
        ("dropped_attributes_count", 4, _F.TYPE_UINT32, False, ""),
    ],
    "Link": [
        ("trace_id", 1, _F.TYPE_BYTES, False, ""),
        ("span_id", 2, _F.TYPE_BYTES, False, ""),
        ("trace_state", 3, _F.TYPE_STRING, False, ""),
        ("attributes", 4, _F.TYPE_BYTES, True, ""),
        ("dropped_attributes_count", 5, _F.TYPE_UINT32, False, ""),
        ("flags", 6, _F.TYPE_FIXED32, False, ""),
    ],
    "Status": [
        ("message", 2, _F.TYPE_STRING, False, ""),
        ("code", 3, _F.TYPE_INT32, False, ""),
    ],
}


def _file_proto() -> descriptor_pb2.FileDescriptorProto:
    proto = descriptor_pb2.FileDescriptorProto(
        name="spanlake/otlp_shadow.proto", package=_PACKAGE, syntax="proto3"
    )
    for name, fields in _MESSAGES.items():
        message = proto.message_type.add(name=name)
        for field_name, number, field_type, repeated, type_name in fields:
            field = message.field.add(name=field_name, number=number, type=field_type)
            field.label = _F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL
            if type_name:
                field.type_name = f".{_PACKAGE}.{type_name}"
    return proto


def _classes() -> dict[str, Any]:
    pool = descriptor_pool.DescriptorPool()  # private: never clashes with the real OTLP classes
    pool.Add(_file_proto())
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.{name}"))
        for name in _MESSAGES
    }


_CLASSES = _classes()

# An ExportTraceServiceRequest (or TracesData: same field 1) read with raw attributes.
ShadowRequest: Any = _CLASSES["Request"]
