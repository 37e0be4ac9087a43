"""The OpenTelemetry Zipkin exporters (JSON v1/v2 and protobuf) sending to the app over real HTTP."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pyarrow as pa
import pytest
import uvicorn
from opentelemetry.exporter.zipkin.json import Protocol, ZipkinExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from spanlake.collector.zipkin_http import make_app
from spanlake.storage.attributes import attr_value
from spanlake.storage.schema import STATUS_ERROR
from tests.paths import REPO
from tests.zipkin_proto_client import client_script


class ListWriter:
    def __init__(self):
        self.tables: list[pa.Table] = []

    def write(self, spans: pa.Table) -> None:
        self.tables.append(spans)

    def rows(self):
        return [row for t in self.tables for row in t.to_pylist()]


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, ListWriter]]:
    writer = ListWriter()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    uv = uvicorn.Server(uvicorn.Config(make_app(writer), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}", writer
    uv.should_exit = True
    thread.join(5)
    sock.close()


@pytest.fixture
def writer(server):
    _, writer = server
    writer.tables.clear()
    return writer


def recorded_spans():
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "checkout"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("shop.instrumentation", "2.0")
    with tracer.start_as_current_span("GET /cart", kind=SpanKind.SERVER) as root:
        root.set_attribute("http.status_code", 500)
        root.add_event("cache miss")
        with tracer.start_as_current_span("SELECT", kind=SpanKind.CLIENT) as child:
            child.set_attribute("db.system", "postgresql")
            child.set_status(Status(StatusCode.ERROR, "deadlock"))
    provider.shutdown()
    return memory.get_finished_spans()


def attributes(rows):
    return {a["key"]: attr_value(a) for a in rows}


@pytest.mark.parametrize(("protocol", "path", "kinds"), [
    (Protocol.V2, "/api/v2/spans", (2, 3)),
    (Protocol.V1, "/api/v1/spans", (0, 0)),  # its v1 encoder sends no cs/sr annotations: no kind
])
def test_otel_zipkin_json_exporter_spans_are_stored(server, writer, protocol, path, kinds):
    base, _ = server
    spans = recorded_spans()
    exporter = ZipkinExporter(version=protocol, endpoint=base + path, max_tag_value_length=256)
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    rows = {r["name"]: r for r in writer.rows()}
    assert set(rows) == {"GET /cart", "SELECT"}
    root, child = rows["GET /cart"], rows["SELECT"]
    sdk = {s.name: s for s in spans}
    assert child["trace_id"] == sdk["SELECT"].context.trace_id.to_bytes(16, "big")
    assert child["span_id"] == sdk["SELECT"].context.span_id.to_bytes(8, "big")
    assert child["parent_span_id"] == root["span_id"]
    assert root["parent_span_id"] is None
    assert {r["service_name"] for r in rows.values()} == {"checkout"}
    assert (root["kind"], child["kind"]) == kinds
    assert (child["status_code"], child["status_message"]) == (STATUS_ERROR, "deadlock")
    assert (child["scope_name"], child["scope_version"]) == ("shop.instrumentation", "2.0")
    assert attributes(child["span_attributes"])["db.system"] == "postgresql"
    assert attributes(root["span_attributes"])["http.status_code"] == "500"  # Zipkin tags are strings
    # the exporter writes an event as the JSON {name: attributes} annotation value
    assert [e["name"] for e in root["events"]] == ['{"cache miss": {}}']
    # Zipkin carries microseconds: the stored times are the SDK's, rounded to the microsecond
    assert root["start_time_unix_nano"] % 1000 == 0
    assert abs(root["start_time_unix_nano"] - sdk["GET /cart"].start_time) <= 500


# The protobuf exporter runs in its own interpreter (see tests/zipkin_proto_client.py for why).
_PROTO_CLIENT = client_script("""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import SpanKind

    tracer = TracerProvider(resource=Resource.create({"service.name": "proto-svc"})).get_tracer("t")
    with tracer.start_as_current_span("consume", kind=SpanKind.CONSUMER) as span:
        span.set_attribute("messaging.system", "kafka")
    print(format(span.get_span_context().trace_id, "032x"))
    sys.exit(ZipkinExporter(endpoint=sys.argv[1]).export([span]).name != "SUCCESS")
""")


def test_otel_zipkin_protobuf_exporter_spans_are_stored(server, writer):
    base, _ = server
    done = subprocess.run([sys.executable, "-c", _PROTO_CLIENT, base + "/api/v2/spans"], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    (row,) = writer.rows()
    assert row["trace_id"].hex() == done.stdout.strip()
    assert (row["name"], row["kind"], row["service_name"]) == ("consume", 5, "proto-svc")
    assert attributes(row["span_attributes"])["messaging.system"] == "kafka"
