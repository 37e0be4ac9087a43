"""Real client libraries against one running ``spanlake serve``, each trace read back through
``/api/traces/{id}`` (Jaeger v1 JSON) and ``/api/v3/traces/{id}`` (OTLP JSON) with the documented
mapping checked: service, operation, kind, tags/attributes, parent.

- ``jaeger-client`` (Python) over UDP compact (6831); over HTTP Thrift (14268) its own Thrift Batch is
  posted with Apache Thrift's ``THttpClient``, since the Python client has no HTTP sender;
- the OpenTelemetry Zipkin exporters: JSON v2 and v1 in process, protobuf in a subprocess (its
  protobuf-3-era generated module is rebuilt for today's runtime first, as in
  ``tests/collector/test_zipkin_exporters.py``);
- the OpenTelemetry OTLP exporters, gRPC and HTTP/protobuf.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

import pytest
from jaeger_client import thrift as jaeger_thrift
from jaeger_client.config import Config
from jaeger_client.reporter import InMemoryReporter
from jaeger_client.sampler import ConstSampler
from jaeger_client.tracer import Tracer
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.exporter.zipkin.encoder import Protocol
from opentelemetry.exporter.zipkin.json import ZipkinExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode
from thrift.protocol import TBinaryProtocol
from thrift.transport import THttpClient

from tests.e2e.support import Json, attributes, eventually, parent_of, service_of, v1_tags, v1_trace, v3_trace
from tests.paths import REPO
from tests.server import SpanlakeProcess
from tests.zipkin_proto_client import client_script

KIND_NUMBERS = {"": 0, "internal": 1, "server": 2, "client": 3, "producer": 4, "consumer": 5}


@pytest.fixture(scope="module")
def server(shared_spanlake_server: SpanlakeProcess) -> SpanlakeProcess:
    return shared_spanlake_server


@dataclass
class Expect:
    """One span as it must read back. ``tags`` are v1 ``(type, value)``; ``attrs`` OTLP AnyValue JSON."""

    kind: str = ""
    parent: str | None = None  # the parent's operation name
    tags: dict[str, tuple[str, Any]] = field(default_factory=dict)
    attrs: dict[str, Json] = field(default_factory=dict)
    error: bool = False


def check_read_back(server: SpanlakeProcess, trace_id: str, service: str, spans: dict[str, Expect]) -> None:
    eventually(lambda: _check_v1(server, trace_id, service, spans))
    _check_v3(server, trace_id, service, spans)


def _check_v1(server: SpanlakeProcess, trace_id: str, service: str, spans: dict[str, Expect]) -> None:
    trace = v1_trace(server, trace_id)
    by_name = {s["operationName"]: s for s in trace["spans"]}
    assert set(by_name) == set(spans), sorted(by_name)
    for name, expect in spans.items():
        span = by_name[name]
        assert service_of(trace, span) == service
        assert parent_of(span) == (by_name[expect.parent]["spanID"] if expect.parent else None)
        tags = v1_tags(span["tags"])
        assert tags.get("span.kind") == (("string", expect.kind) if expect.kind else None)
        assert (tags.get("error") == ("bool", True)) == expect.error
        for key, value in expect.tags.items():
            assert tags.get(key) == value, f"{name}: tag {key}"


def _check_v3(server: SpanlakeProcess, trace_id: str, service: str, spans: dict[str, Expect]) -> None:
    found = v3_trace(server, trace_id)
    by_name = {s["name"]: s for s in found}
    assert set(by_name) == set(spans)
    for name, expect in spans.items():
        span = by_name[name]
        assert attributes(span["_resource"].get("attributes"))["service.name"] == {"stringValue": service}
        assert span.get("parentSpanId", "") == (by_name[expect.parent]["spanId"] if expect.parent else "")
        assert span.get("kind", 0) == KIND_NUMBERS[expect.kind]
        assert (span.get("status", {}).get("code") == 2) == expect.error
        attrs = attributes(span.get("attributes"))
        for key, value in expect.attrs.items():
            assert attrs.get(key) == value, f"{name}: attribute {key}"


# ---- jaeger-client ------------------------------------------------------------------------------


def jaeger_spans(tracer: Tracer) -> str:
    """A server span with a child client span in error; returns the trace ID as 32 hex digits."""
    with tracer.start_span("checkout", tags={"span.kind": "server"}) as parent:
        parent.set_tag("answer", 42)
        parent.log_kv({"event": "cache-miss", "key": "user:1"})
        with tracer.start_span("charge", child_of=parent) as child:
            child.set_tag("span.kind", "client")
            child.set_tag("error", True)
            child.set_tag("ratio", 0.5)
    return format(parent.trace_id, "032x")


def jaeger_expectations() -> dict[str, Expect]:
    return {
        "checkout": Expect("server", tags={"answer": ("int64", 42)}, attrs={"answer": {"intValue": "42"}}),
        "charge": Expect("client", "checkout", error=True, tags={"ratio": ("float64", 0.5)},
                         attrs={"ratio": {"doubleValue": 0.5}}),
    }


def _check_jaeger_log(server: SpanlakeProcess, trace_id: str) -> None:
    checkout = next(s for s in v1_trace(server, trace_id)["spans"] if s["operationName"] == "checkout")
    (log,) = checkout["logs"]
    assert v1_tags(log["fields"]) == {"event": ("string", "cache-miss"), "key": ("string", "user:1")}
    (event,) = next(s for s in v3_trace(server, trace_id) if s["name"] == "checkout")["events"]
    assert event["name"] == "cache-miss"
    assert attributes(event["attributes"]) == {"key": {"stringValue": "user:1"}}


def test_jaeger_client_over_udp_compact(server: SpanlakeProcess) -> None:
    # jaeger-client's reporter runs on a tornado loop that needs an asyncio loop in this thread.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        config = Config(config={"sampler": {"type": "const", "param": 1}, "logging": False,
                                "local_agent": {"reporting_host": "127.0.0.1",
                                                "reporting_port": server.ports["jaeger_compact"]}},
                        service_name="udp-client", validate=True)
        tracer = config.new_tracer()
        trace_id = jaeger_spans(tracer)
        tracer.close()  # flushes the reporter queue to the socket
    finally:
        asyncio.set_event_loop(None)
        loop.close()
    check_read_back(server, trace_id, "udp-client", jaeger_expectations())
    _check_jaeger_log(server, trace_id)
    process = v1_trace(server, trace_id)["processes"]
    (tags,) = [v1_tags(p["tags"]) for p in process.values()]
    assert tags["opencensus.exporterversion"][1].startswith("Jaeger-Python-")  # jaeger.version, mapped
    assert "host.name" in tags and "hostname" not in tags


def test_jaeger_client_batch_over_http_thrift(server: SpanlakeProcess) -> None:
    reporter = InMemoryReporter()
    tracer = Tracer("http-client", reporter, ConstSampler(True), tags={"hostname": "box-1"})
    trace_id = jaeger_spans(tracer)
    batch = jaeger_thrift.make_jaeger_batch(  # type: ignore[no-untyped-call]
        spans=reporter.get_spans(),
        process=jaeger_thrift.make_process(  # type: ignore[no-untyped-call]
            service_name="http-client", tags=tracer.tags, max_length=1024))
    http = THttpClient.THttpClient(f"{server.url('jaeger_http')}/api/traces")
    batch.write(TBinaryProtocol.TBinaryProtocol(http))
    http.flush()
    assert http.code == 202
    check_read_back(server, trace_id, "http-client", jaeger_expectations())
    _check_jaeger_log(server, trace_id)
    (process,) = v3_trace(server, trace_id)[:1]
    assert attributes(process["_resource"]["attributes"])["host.name"] == {"stringValue": "box-1"}


# ---- OpenTelemetry SDK spans, through the Zipkin and OTLP exporters ------------------------------------


def emit(exporter: SpanExporter, service: str) -> str:
    """Two SDK spans, exported in one call whose result must be SUCCESS; returns the trace ID."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("shop.instrumentation", "2.0")
    with tracer.start_as_current_span("GET /cart", kind=SpanKind.SERVER) as root:
        root.set_attribute("http.status_code", 200)
        with tracer.start_as_current_span("SELECT", kind=SpanKind.CLIENT) as child:
            child.set_attribute("db.system", "postgresql")
            child.set_status(Status(StatusCode.ERROR, "deadlock"))
    provider.shutdown()
    assert exporter.export(memory.get_finished_spans()) == SpanExportResult.SUCCESS
    exporter.shutdown()
    return format(root.get_span_context().trace_id, "032x")


@pytest.mark.parametrize("version", [Protocol.V2, Protocol.V1], ids=["v2", "v1"])
def test_otel_zipkin_json_exporter(server: SpanlakeProcess, version: Protocol) -> None:
    path = "/api/v2/spans" if version == Protocol.V2 else "/api/v1/spans"
    service = f"zipkin-{version.value}"
    trace_id = emit(ZipkinExporter(version=version, endpoint=server.url("zipkin") + path,
                                     max_tag_value_length=256), service)
    # Zipkin tags are strings; the exporter's v1 encoder sends no cs/sr annotations, so no kind.
    server_kind, client_kind = ("server", "client") if version == Protocol.V2 else ("", "")
    check_read_back(server, trace_id, service, {
        "GET /cart": Expect(server_kind, tags={"http.status_code": ("string", "200")},
                            attrs={"http.status_code": {"stringValue": "200"}}),
        "SELECT": Expect(client_kind, "GET /cart", error=True,
                         tags={"db.system": ("string", "postgresql"),
                               "otel.status_description": ("string", "deadlock")},
                         attrs={"db.system": {"stringValue": "postgresql"}}),
    })


# The protobuf exporter in its own interpreter (tests/zipkin_proto_client.py); prints the trace ID and
# exits non-zero unless the export succeeded.
_PROTO_CLIENT = client_script("""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind

    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "zipkin-proto"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("poll", kind=SpanKind.CONSUMER) as root:
        with tracer.start_as_current_span("send", kind=SpanKind.PRODUCER) as child:
            child.set_attribute("messaging.system", "kafka")
    provider.shutdown()
    print(format(root.get_span_context().trace_id, "032x"))
    sys.exit(ZipkinExporter(endpoint=sys.argv[1]).export(memory.get_finished_spans()).name != "SUCCESS")
""")


def test_otel_zipkin_protobuf_exporter(server: SpanlakeProcess) -> None:
    done = subprocess.run([sys.executable, "-c", _PROTO_CLIENT, server.url("zipkin") + "/api/v2/spans"],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    check_read_back(server, done.stdout.strip(), "zipkin-proto", {
        "poll": Expect("consumer"),
        "send": Expect("producer", "poll", tags={"messaging.system": ("string", "kafka")},
                       attrs={"messaging.system": {"stringValue": "kafka"}}),
    })


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_otel_otlp_exporter(server: SpanlakeProcess, transport: str) -> None:
    exporter: SpanExporter = (GrpcExporter(endpoint=server.otlp_grpc_endpoint, insecure=True)
                              if transport == "grpc" else
                              HttpExporter(endpoint=f"{server.url('otlp_http')}/v1/traces"))
    service = f"otlp-{transport}"
    trace_id = emit(exporter, service)
    check_read_back(server, trace_id, service, {
        "GET /cart": Expect("server", tags={"http.status_code": ("int64", 200)},
                            attrs={"http.status_code": {"intValue": "200"}}),
        "SELECT": Expect("client", "GET /cart", error=True,
                         tags={"db.system": ("string", "postgresql"),
                               "otel.status_code": ("string", "ERROR"),
                               "otel.status_description": ("string", "deadlock"),
                               "otel.scope.name": ("string", "shop.instrumentation"),
                               "otel.scope.version": ("string", "2.0")},
                         attrs={"db.system": {"stringValue": "postgresql"}}),
    })
    select = next(s for s in v3_trace(server, trace_id) if s["name"] == "SELECT")
    assert select["status"] == {"code": 2, "message": "deadlock"}
    assert select["_scope"] == {"name": "shop.instrumentation", "version": "2.0"}
