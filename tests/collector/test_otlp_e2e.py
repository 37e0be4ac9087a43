"""The real OpenTelemetry Python SDK exporters against a running ``spanlake serve``."""

from __future__ import annotations

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from spanlake.storage.attributes import any_value_to_json
from tests.server import SpanlakeProcess

ATTRIBUTES = {
    "http.method": "GET",
    "http.status_code": 503,
    "ratio": 0.25,
    "cached": False,
    "tags": ["a", "b"],
    "ports": [80, 443],
}


def _emit(exporter: SpanExporter, service: str) -> tuple[str, str]:
    """Two spans (parent and child) with every attribute type, an event and a link."""
    provider = TracerProvider(resource=Resource.create({"service.name": service, "host.cores": 2}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("e2e.scope", "1.2.3")
    with tracer.start_as_current_span("checkout", kind=SpanKind.SERVER) as parent:
        other = parent.get_span_context()
        with tracer.start_as_current_span("charge", kind=SpanKind.CLIENT, attributes=ATTRIBUTES,
                                          links=[Link(other, {"why": "retry"})]) as child:
            child.add_event("card.declined", {"attempt": 2})
            child.set_status(Status(StatusCode.ERROR, "declined"))
    provider.shutdown()
    return format(other.trace_id, "032x"), format(child.get_span_context().span_id, "016x")


def _read_back(server: SpanlakeProcess, trace_id: str) -> list[dict]:
    reply = httpx.get(f"{server.query_url}/api/v3/traces/{trace_id}", timeout=10)
    assert reply.status_code == 200, reply.text
    return [span | {"_resource": rs["resource"], "_scope": ss["scope"]}
            for rs in reply.json()["result"]["resourceSpans"]
            for ss in rs["scopeSpans"] for span in ss["spans"]]


@pytest.mark.parametrize("transport", ["grpc", "http/protobuf"])
def test_sdk_spans_are_stored_exactly_as_sent(spanlake_server: SpanlakeProcess, transport: str) -> None:
    if transport == "grpc":
        exporter: SpanExporter = GrpcExporter(endpoint=spanlake_server.otlp_grpc_endpoint, insecure=True)
    else:
        exporter = HttpExporter(endpoint=f"{spanlake_server.url('otlp_http')}/v1/traces")
    trace_id, child_id = _emit(exporter, f"shop-{transport}")

    spans = _read_back(spanlake_server, trace_id)
    assert sorted(s["name"] for s in spans) == ["charge", "checkout"]
    child = next(s for s in spans if s["spanId"] == child_id)
    assert child["kind"] == 3  # CLIENT
    assert child["status"] == {"code": 2, "message": "declined"}
    sent = {k: any_value_to_json(v) for k, v in ATTRIBUTES.items()}
    assert {a["key"]: a["value"] for a in child["attributes"]} == sent
    assert child["events"][0]["name"] == "card.declined"
    assert child["events"][0]["attributes"] == [{"key": "attempt", "value": {"intValue": "2"}}]
    assert child["links"][0]["attributes"] == [{"key": "why", "value": {"stringValue": "retry"}}]
    assert child["_scope"]["name"] == "e2e.scope" and child["_scope"]["version"] == "1.2.3"
    resource = {a["key"]: a["value"] for a in child["_resource"]["attributes"]}
    assert resource["service.name"] == {"stringValue": f"shop-{transport}"}
    assert resource["host.cores"] == {"intValue": "2"}


def test_jaeger_trace_endpoint_shows_the_stored_trace(spanlake_server: SpanlakeProcess) -> None:
    trace_id, _ = _emit(GrpcExporter(endpoint=spanlake_server.otlp_grpc_endpoint, insecure=True), "shop")
    reply = httpx.get(f"{spanlake_server.query_url}/api/traces/{trace_id}", timeout=10)
    assert reply.status_code == 200
    trace = reply.json()["data"][0]
    assert trace["traceID"] == trace_id
    assert {s["operationName"] for s in trace["spans"]} == {"checkout", "charge"}
    assert [p["serviceName"] for p in trace["processes"].values()] == ["shop"]
