"""The zipkin.proto messages. Generated protobuf modules carry no type information for mypy (the
builder creates their classes at import time), so the two the decoder uses are exported as ``Any``."""

from __future__ import annotations

from typing import Any

from spanlake.collector.formats.proto.zipkin import zipkin_pb2

ListOfSpans: Any = vars(zipkin_pb2)["ListOfSpans"]
Span: Any = vars(zipkin_pb2)["Span"]
