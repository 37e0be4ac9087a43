"""OTLP requests for the end-to-end tests, built with the real opentelemetry-proto classes.

Jaeger's suite fixtures (OTLP/JSON) become requests after Jaeger's date shift; the suite's
programmatic cases (a 10,008-span trace, duplicate span IDs, dependencies) are built span by span.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tests.otlp_compare import otlp_json_to_request
from tests.server import SpanlakeProcess
from tests.storage.jaeger_suite import day_shift_ns

Json = dict[str, Any]


def shifted_fixture(path: Path) -> Json:
    """A suite trace (OTLP/JSON) with Jaeger's date shift applied to span and event times."""
    data: Json = json.loads(path.read_text())
    return shift_otlp_json(data, day_shift_ns())


def shift_otlp_json(data: Json, shift: int) -> Json:
    out = copy.deepcopy(data)
    for rs in out["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for span in ss["spans"]:
                for key in ("startTimeUnixNano", "endTimeUnixNano"):
                    span[key] = str(int(span[key]) + shift)
                for event in span.get("events", []):
                    event["timeUnixNano"] = str(int(event["timeUnixNano"]) + shift)
    return out


def fixture_request(path: Path) -> ExportTraceServiceRequest:
    return otlp_json_to_request(shifted_fixture(path))


def send_http(server: SpanlakeProcess, request: ExportTraceServiceRequest) -> None:
    reply = httpx.post(f"{server.url('otlp_http')}/v1/traces", content=request.SerializeToString(),
                       headers={"Content-Type": "application/x-protobuf"}, timeout=60)
    assert reply.status_code == 200, reply.text


def send_grpc(server: SpanlakeProcess, request: ExportTraceServiceRequest) -> None:
    with grpc.insecure_channel(server.otlp_grpc_endpoint) as channel:
        response = TraceServiceStub(channel).Export(request, timeout=60)  # type: ignore[no-untyped-call]
    assert response.partial_success.rejected_spans == 0, response.partial_success.error_message


@dataclass
class SpanSpec:
    trace_id: bytes
    span_id: bytes
    service: str
    name: str = "op"
    parent: bytes | None = None
    start_ns: int = 0
    duration_ns: int = 1000
    kind: int = Span.SPAN_KIND_INTERNAL
    attributes: dict[str, str] = field(default_factory=dict)


def build_request(specs: Iterable[SpanSpec]) -> ExportTraceServiceRequest:
    """One ResourceSpans per service, the spans in the order given."""
    request = ExportTraceServiceRequest()
    scopes: dict[str, Any] = {}
    for spec in specs:
        if spec.service not in scopes:
            rs = request.resource_spans.add()
            rs.resource.attributes.append(KeyValue(key="service.name",
                                                   value=AnyValue(string_value=spec.service)))
            scopes[spec.service] = rs.scope_spans.add()
        span = scopes[spec.service].spans.add(
            trace_id=spec.trace_id, span_id=spec.span_id, name=spec.name, kind=spec.kind,
            start_time_unix_nano=spec.start_ns, end_time_unix_nano=spec.start_ns + spec.duration_ns)
        if spec.parent is not None:
            span.parent_span_id = spec.parent
        for key, value in spec.attributes.items():
            span.attributes.append(KeyValue(key=key, value=AnyValue(string_value=value)))
    return request
