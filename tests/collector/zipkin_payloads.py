"""Real wire bytes for the Zipkin fixtures, which upstream keeps as JSON renderings.

Protobuf fixtures (proto3 JSON of zipkin.proto ``ListOfSpans``) go through protobuf's own JSON parser;
Thrift fixtures (Go JSON of zipkinCore.thrift ``[]Span``) are written with the Apache Thrift library's
TBinaryProtocol using the IDL's field ids, independent of our own Thrift codec.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from thrift.protocol.TBinaryProtocol import TBinaryProtocol
from thrift.Thrift import TType
from thrift.transport.TTransport import TMemoryBuffer

from spanlake.collector.formats.proto.zipkin import ListOfSpans
from tests.paths import FIXTURES

DESER = FIXTURES / "jaeger" / "zipkin-deser"
RECEIVER_HTTP = FIXTURES / "jaeger" / "zipkin-receiver-http"
THRIFT_TO_DOMAIN = FIXTURES / "jaeger" / "zipkin-thrift-v1-to-domain"
OTEL_RECEIVER = FIXTURES / "otel-collector-contrib" / "zipkinreceiver-testdata"

ANNOTATION_TYPES = ["BOOL", "BYTES", "I16", "I32", "I64", "DOUBLE", "STRING"]  # zipkinCore.thrift order


def proto_bytes(path: Path) -> bytes:
    return bytes(json_format.Parse(path.read_text(), ListOfSpans()).SerializeToString())


def thrift_bytes(spans: list[dict[str, Any]]) -> bytes:
    buf = TMemoryBuffer()
    proto = TBinaryProtocol(buf)
    proto.writeListBegin(TType.STRUCT, len(spans))
    for span in spans:
        _span(proto, span)
    proto.writeListEnd()
    return bytes(buf.getvalue())


def thrift_fixture_bytes(path: Path) -> bytes:
    return thrift_bytes(json.loads(path.read_text()))


def _fields(proto: TBinaryProtocol, obj: dict[str, Any], spec: list[tuple[str, int, int, Any]]) -> None:
    proto.writeStructBegin("")
    for key, fid, ttype, write in spec:
        value = obj.get(key)
        if value is None:
            continue
        proto.writeFieldBegin(key, ttype, fid)
        write(proto, value)
        proto.writeFieldEnd()
    proto.writeFieldStop()
    proto.writeStructEnd()


def _list(element):
    def write(proto: TBinaryProtocol, items: list[dict[str, Any]]) -> None:
        proto.writeListBegin(TType.STRUCT, len(items))
        for item in items:
            element(proto, item)
        proto.writeListEnd()
    return write


def _endpoint(proto: TBinaryProtocol, ep: dict[str, Any]) -> None:
    _fields(proto, ep, [
        ("ipv4", 1, TType.I32, TBinaryProtocol.writeI32),
        ("port", 2, TType.I16, TBinaryProtocol.writeI16),
        ("service_name", 3, TType.STRING, TBinaryProtocol.writeString),
        ("ipv6", 4, TType.STRING, lambda p, v: p.writeBinary(base64.b64decode(v))),
    ])


def _annotation(proto: TBinaryProtocol, a: dict[str, Any]) -> None:
    _fields(proto, a, [
        ("timestamp", 1, TType.I64, TBinaryProtocol.writeI64),
        ("value", 2, TType.STRING, TBinaryProtocol.writeString),
        ("host", 3, TType.STRUCT, _endpoint),
    ])


def _binary_annotation(proto: TBinaryProtocol, b: dict[str, Any]) -> None:
    _fields(proto, b, [
        ("key", 1, TType.STRING, TBinaryProtocol.writeString),
        ("value", 2, TType.STRING, lambda p, v: p.writeBinary(base64.b64decode(v))),
        ("annotation_type", 3, TType.I32, lambda p, v: p.writeI32(ANNOTATION_TYPES.index(v))),
        ("host", 4, TType.STRUCT, _endpoint),
    ])


def _span(proto: TBinaryProtocol, span: dict[str, Any]) -> None:
    _fields(proto, span, [
        ("trace_id", 1, TType.I64, TBinaryProtocol.writeI64),
        ("name", 3, TType.STRING, TBinaryProtocol.writeString),
        ("id", 4, TType.I64, TBinaryProtocol.writeI64),
        ("parent_id", 5, TType.I64, TBinaryProtocol.writeI64),
        ("annotations", 6, TType.LIST, _list(_annotation)),
        ("binary_annotations", 8, TType.LIST, _list(_binary_annotation)),
        ("debug", 9, TType.BOOL, TBinaryProtocol.writeBool),
        ("timestamp", 10, TType.I64, TBinaryProtocol.writeI64),
        ("duration", 11, TType.I64, TBinaryProtocol.writeI64),
        ("trace_id_high", 12, TType.I64, TBinaryProtocol.writeI64),
    ])
