"""Shadow message classes for reading OTLP trace protobuf quickly.

They have the wire layout of ``opentelemetry/proto/trace/v1/trace.proto`` (same field numbers and wire
types, so any valid OTLP request parses) down to ScopeSpans, but declare the spans as ``repeated bytes``
and the resource / scope as ``bytes``. Reading spans and attributes through upb's message objects costs
several microseconds per span in CPython (a wrapper object per message and per field read); as raw
bytes, all spans of a request are decoded at once with numpy (``otlp_spans.py``).

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
        ("spans", 2, _F.TYPE_BYTES, True, ""),  # serialized Span messages, for otlp_spans.py
        ("schema_url", 3, _F.TYPE_STRING, False, ""),
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
