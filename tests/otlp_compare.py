"""Test helpers: OTLP/JSON -> protobuf message, and a canonical form to compare requests by.

protobuf's ``json_format`` reads bytes as base64, OTLP/JSON writes IDs as hex; ``otlp_json_to_request``
converts the IDs first and then parses strictly (unknown fields are errors), so an expected message is
built by protobuf itself, not by the code under test.
"""

from __future__ import annotations

import base64
import copy
from typing import Any

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

_ID_FIELDS = ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id")


def otlp_json_to_request(obj: dict[str, Any]) -> ExportTraceServiceRequest:
    data = copy.deepcopy(obj)
    for resource_spans in data.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                _ids_to_base64(span)
                for link in span.get("links", []):
                    _ids_to_base64(link)
    request = ExportTraceServiceRequest()
    json_format.ParseDict(data, request)
    return request


def _ids_to_base64(obj: dict[str, Any]) -> None:
    for field in _ID_FIELDS:
        if field in obj:
            obj[field] = base64.b64encode(bytes.fromhex(obj[field])).decode()


def canonical(request: ExportTraceServiceRequest) -> list[tuple[bytes, ...]]:
    """One sorted tuple per span: (resource, resource schema URL, scope, scope schema URL, span), each
    serialized deterministically. Equal iff both requests carry the same spans with the same resource
    and scope, whatever their order and grouping; every field and attribute type counts."""
    out = []
    for rs in request.resource_spans:
        resource = rs.resource.SerializeToString(deterministic=True)
        for ss in rs.scope_spans:
            scope = ss.scope.SerializeToString(deterministic=True)
            for span in ss.spans:
                out.append((resource, rs.schema_url.encode(), scope, ss.schema_url.encode(),
                            _span_bytes(span)))
    return sorted(out)


def _span_bytes(span: Span) -> bytes:
    # An absent status and an empty one are the same span in OTLP (pdata's Status cannot be absent),
    # and a stored span cannot tell them apart; every other field is compared as sent.
    if span.HasField("status") and span.status == Status():
        span = Span.FromString(span.SerializeToString())
        span.ClearField("status")
    data: bytes = span.SerializeToString(deterministic=True)
    return data
