"""Small OTLP requests built with the real opentelemetry-proto classes, for end-to-end tests."""

from __future__ import annotations

import os
import time

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span


def make_request(traces: int, spans_per_trace: int, service: str = "checkout",
                 start_ns: int | None = None) -> ExportTraceServiceRequest:
    """``traces`` random traces of ``spans_per_trace`` spans (a root and its children)."""
    start = start_ns if start_ns is not None else time.time_ns() - 10**9
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value=service)))
    ss = rs.scope_spans.add()
    ss.scope.name = "tests"
    for t in range(traces):
        trace_id = os.urandom(16)
        root = os.urandom(8)
        for i in range(spans_per_trace):
            span = ss.spans.add(trace_id=trace_id, span_id=root if i == 0 else os.urandom(8),
                                name=f"op-{i % 3}", kind=Span.SPAN_KIND_SERVER,
                                start_time_unix_nano=start + t * 1000 + i,
                                end_time_unix_nano=start + t * 1000 + i + 500_000)
            if i:
                span.parent_span_id = root
            span.attributes.append(KeyValue(key="i", value=AnyValue(int_value=i)))
    return req


def span_count(req: ExportTraceServiceRequest) -> int:
    return sum(len(ss.spans) for rs in req.resource_spans for ss in rs.scope_spans)
