"""Microseconds of CPU per span to convert a typical OTLP request, protobuf and JSON.

The request: N spans (default 100, 512 (the OTel SDK's default batch), 1,000 and 5,000) under one
resource with 5 attributes, each span with 11 string attributes (HTTP/RPC style, a few
high-cardinality values), one in ten with one event carrying 2 attributes. CPU time (process time),
best of 5, so other processes on the machine inflate it less than wall time.

    .venv/bin/python bench/otlp_convert.py [N ...]
"""

from __future__ import annotations

import base64
import json
import os
import random
import sys
import time
import timeit
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)

from spanlake.collector.formats.otlp import ConvertResult, decode_otlp_json, decode_otlp_protobuf

SPANS = 1000


def typical_request(spans: int = SPANS, seed: int = 1) -> ExportTraceServiceRequest:
    rnd = random.Random(seed)
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    for key, value in [
        ("service.name", "checkout"),
        ("service.version", "1.4.2"),
        ("host.name", "ip-10-0-3-17"),
        ("telemetry.sdk.language", "go"),
        ("deployment.environment", "prod"),
    ]:
        rs.resource.attributes.add(key=key).value.string_value = value
    ss = rs.scope_spans.add()
    ss.scope.name, ss.scope.version = "go.opentelemetry.io/otel/http", "0.45.0"
    for i in range(spans):
        span = ss.spans.add()
        span.trace_id = rnd.randbytes(16)
        span.span_id = rnd.randbytes(8)
        span.parent_span_id = rnd.randbytes(8) if i % 8 else b""
        span.name = f"GET /api/v1/items/{{id}}/{i % 20}"
        span.kind = 2
        span.start_time_unix_nano = 1_700_000_000_000_000_000 + i * 1000
        span.end_time_unix_nano = span.start_time_unix_nano + rnd.randrange(10**6, 10**9)
        attrs = {
            "http.method": "GET",
            "http.scheme": "https",
            "http.status_code": "200",
            "http.route": "/api/v1/items/{id}",
            "net.peer.name": f"10.0.{i % 7}.{i % 250}",
            "http.url": f"https://shop.example.com/api/v1/items/{rnd.randrange(10**9)}",
            "user_agent.original": "Mozilla/5.0 (X11; Linux x86_64)",
            "http.flavor": "1.1",
            "net.host.port": "443",
            "request.id": rnd.randbytes(12).hex(),
            "component": "net/http",
        }
        for key, value in attrs.items():
            span.attributes.add(key=key).value.string_value = value
        if i % 10 == 0:
            event = span.events.add(name="exception", time_unix_nano=span.start_time_unix_nano + 5)
            event.attributes.add(key="exception.type").value.string_value = "io.EOF"
            event.attributes.add(key="exception.message").value.string_value = "unexpected EOF"
    return req


def otlp_json_body(req: ExportTraceServiceRequest) -> bytes:
    """The request as OTLP/JSON (hex IDs, enums as numbers), as SDKs send it."""
    obj = json_format.MessageToDict(req, use_integers_for_enums=True)
    for rs in obj["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for span in ss["spans"]:
                for field in ("traceId", "spanId", "parentSpanId"):
                    if field in span:
                        span[field] = base64.b64decode(span[field]).hex()
    return json.dumps(obj).encode()


def cpu_seconds(fn: Callable[[], object], runs: int = 10, repeat: int = 5) -> float:
    """Best per-call process CPU time: other processes on the machine do not inflate it."""
    return min(timeit.repeat(fn, number=runs, repeat=repeat, timer=time.process_time)) / runs


def main() -> None:
    sizes = [int(arg) for arg in sys.argv[1:]] or [100, 512, SPANS, 5000]
    for spans in sizes:
        req = typical_request(spans)
        body = req.SerializeToString()
        json_body = otlp_json_body(req)
        cases: list[tuple[str, Callable[[], ConvertResult], int]] = [
            ("protobuf", lambda: decode_otlp_protobuf(body), len(body)),  # noqa: B023
            ("json", lambda: decode_otlp_json(json_body), len(json_body)),  # noqa: B023
        ]
        for name, convert, size in cases:
            assert convert().spans.num_rows == spans
            runs = max(1, 5000 // spans)
            per_span = cpu_seconds(convert, runs=runs) / spans * 1e6
            print(f"{name:8s} {per_span:6.2f} us/span CPU  ({spans} spans, {size} bytes per request)")


if __name__ == "__main__":
    main()
