"""Real Zipkin clients write to a running ``spanlake serve`` and read back through Zipkin's v2 API.

- the OpenTelemetry Zipkin JSON exporter (Python): what it sent comes back field by field;
- the OpenTelemetry OTLP exporter: the same spans come back as the Collector's Zipkin exporter
  writes them;
- the ``zipkin`` npm library with its HTTP transport (``zipkin-transport-http``), run by Node.js. The
  test installs the pinned packages itself with npm into a cache directory (``SPANLAKE_NPM_CACHE``,
  default ``~/.cache/spanlake-tests``); CI installs Node.js and npm (``.ci/run``). Without them the
  test fails and says so rather than skip.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.exporter.zipkin.encoder import Protocol
from opentelemetry.exporter.zipkin.json import ZipkinExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from tests.server import SpanlakeProcess
from tests.waiting import eventually
from tests.zipkin_data import normalized

ZIPKIN_JS = ("zipkin@0.22.0", "zipkin-transport-http@0.22.0", "node-fetch@2.7.0")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SpanlakeProcess]:
    process = SpanlakeProcess(tmp_path_factory.mktemp("zipkin-clients") / "data").start()
    yield process
    process.stop()


def read_trace(server: SpanlakeProcess, trace_id: str, spans: int) -> list[dict[str, Any]]:
    def check() -> list[dict[str, Any]]:
        response = httpx.get(f"{server.url('zipkin')}/api/v2/trace/{trace_id}", timeout=10)
        assert response.status_code == 200, response.text
        trace: list[dict[str, Any]] = response.json()
        assert len(trace) == spans
        return trace
    return eventually(check, timeout=15)


def recorded_spans(service: str) -> tuple[ReadableSpan, ...]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("shop.instrumentation", "2.0")
    with tracer.start_as_current_span("GET /Checkout", kind=SpanKind.SERVER) as root:
        root.set_attribute("http.status_code", 500)
        root.add_event("cache miss")
        with tracer.start_as_current_span("charge", kind=SpanKind.CLIENT) as child:
            child.set_attribute("peer.service", "payments")
            child.set_status(Status(StatusCode.ERROR, "card declined"))
    provider.shutdown()
    return memory.get_finished_spans()


def test_otel_zipkin_exporter_spans_read_back_as_sent(server):
    spans = recorded_spans("zipkin-json-shop")
    exporter = ZipkinExporter(version=Protocol.V2, endpoint=f"{server.url('zipkin')}/api/v2/spans")
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    sent = json.loads(exporter.encoder.serialize(spans, exporter.local_node))
    trace = read_trace(server, sent[0]["traceId"], 2)
    assert sorted(trace, key=lambda s: s["id"]) == sorted(map(normalized, sent), key=lambda s: s["id"])


def test_otlp_spans_read_back_as_the_collectors_zipkin_exporter_writes_them(server):
    spans = recorded_spans("otlp-shop")
    exporter = OTLPSpanExporter(endpoint=f"{server.url('otlp_http')}/v1/traces")
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    trace_id = f"{spans[0].context.trace_id:032x}"
    by_name = {s["name"]: s for s in read_trace(server, trace_id, 2)}
    root, child = by_name["get /checkout"], by_name["charge"]
    assert (root["kind"], child["kind"], child["parentId"]) == ("SERVER", "CLIENT", root["id"])
    assert root["localEndpoint"] == {"serviceName": "otlp-shop"}
    assert child["remoteEndpoint"] == {"serviceName": "payments"}
    assert root["annotations"][0]["value"] == "cache miss"
    assert root["tags"]["http.status_code"] == "500"
    assert {k: child["tags"][k] for k in ("error", "otel.status_code", "otel.status_description",
                                          "otel.library.name", "otel.library.version")} == {
        "error": "true", "otel.status_code": "STATUS_CODE_ERROR", "otel.status_description": "card declined",
        "otel.library.name": "shop.instrumentation", "otel.library.version": "2.0"}
    # Zipkin lower-cases span names; a search by the lower-cased name still finds the trace.
    zipkin = server.url("zipkin")
    assert "get /checkout" in httpx.get(f"{zipkin}/api/v2/spans", params={"serviceName": "otlp-shop"}).json()
    found = httpx.get(f"{zipkin}/api/v2/traces",
                      params={"serviceName": "otlp-shop", "spanName": "get /checkout"}).json()
    assert [t[0]["traceId"] for t in found] == [trace_id]


# ---- zipkin-js ---------------------------------------------------------------------------------

_ZIPKIN_JS_CLIENT = r"""
const {Tracer, BatchRecorder, ExplicitContext, Annotation, InetAddress, jsonEncoder: {JSON_V2}} =
  require('zipkin');
const {HttpLogger} = require('zipkin-transport-http');
const fetch = require('node-fetch');

const logger = new HttpLogger({endpoint: process.argv[2], jsonEncoder: JSON_V2, httpInterval: 50,
                               fetchImplementation: fetch});
const tracer = new Tracer({ctxImpl: new ExplicitContext(), recorder: new BatchRecorder({logger}),
                           localServiceName: 'js-frontend', traceId128Bit: true});
const root = tracer.createRootId();
tracer.letId(root, () => {
  tracer.recordServiceName('js-frontend');
  tracer.recordRpc('GET /checkout');
  tracer.recordAnnotation(new Annotation.ServerRecv());
  tracer.recordAnnotation(new Annotation.LocalAddr({host: new InetAddress('10.0.0.1'), port: 8080}));
  tracer.recordBinary('http.path', '/checkout');
});
const child = tracer.letId(root, () => tracer.createChildId());
tracer.letId(child, () => {
  tracer.recordServiceName('js-frontend');
  tracer.recordRpc('POST /charge');
  tracer.recordAnnotation(new Annotation.ClientSend());
  tracer.recordAnnotation(new Annotation.ServerAddr({serviceName: 'payments',
                                                     host: new InetAddress('10.0.0.2'), port: 9000}));
  tracer.recordBinary('error', 'card declined');
  tracer.recordMessage('retrying');
  tracer.recordAnnotation(new Annotation.ClientRecv());
});
tracer.letId(root, () => tracer.recordAnnotation(new Annotation.ServerSend()));
console.log(JSON.stringify({traceId: root.traceId, root: root.spanId, child: child.spanId}));
setTimeout(() => process.exit(0), 1500);
"""


def zipkin_js_dir() -> Path:
    """The pinned zipkin-js packages, installed once into the cache directory."""
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        pytest.fail("Node.js and npm are needed for the zipkin-js client test (.ci/run installs them)")
    cache = Path(os.environ.get("SPANLAKE_NPM_CACHE") or Path.home() / ".cache" / "spanlake-tests")
    target = cache / "zipkin-js-0.22.0"
    if not (target / "node_modules" / "zipkin-transport-http").is_dir():
        target.mkdir(parents=True, exist_ok=True)
        command = [npm, "install", "--no-audit", "--no-fund", "--prefix", str(target), *ZIPKIN_JS]
        done = subprocess.run(command, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            pytest.fail(f"npm install {' '.join(ZIPKIN_JS)} failed:\n{done.stderr}")
    return target


def test_zipkin_js_http_transport_spans_read_back(server):
    directory = zipkin_js_dir()
    script = directory / "client.js"
    script.write_text(_ZIPKIN_JS_CLIENT)
    done = subprocess.run(["node", str(script), f"{server.url('zipkin')}/api/v2/spans"], cwd=directory,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    ids = json.loads(done.stdout.strip().splitlines()[-1])
    by_id = {s["id"]: s for s in read_trace(server, ids["traceId"], 2)}
    root, child = by_id[ids["root"]], by_id[ids["child"]]
    assert "parentId" not in root and child["parentId"] == ids["root"]
    assert (root["kind"], root["name"], child["kind"], child["name"]) == (
        "SERVER", "get /checkout", "CLIENT", "post /charge")
    assert root["localEndpoint"] == {"serviceName": "js-frontend", "ipv4": "10.0.0.1", "port": 8080}
    assert child["remoteEndpoint"] == {"serviceName": "payments", "ipv4": "10.0.0.2", "port": 9000}
    assert root["tags"] == {"http.path": "/checkout"}
    assert child["tags"] == {"error": "card declined"}
    assert [a["value"] for a in child["annotations"]] == ["retrying"]
    assert root["duration"] > 0 and child["timestamp"] >= root["timestamp"]
