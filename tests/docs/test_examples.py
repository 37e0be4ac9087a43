"""The client examples in the docs, run as written against a real ``spanlake serve``.

Each example is the marked block of its page, unchanged except that spanlake's default ports are
replaced by the test server's free ones. The trace each one sends is read back by its ID.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest

from tests.docs.markdown import PAGES, env_assignments, example, examples
from tests.server import SpanlakeProcess

# docs default port -> the server's port name in tests.server
_PORT_NAMES = {4317: "otlp_grpc", 4318: "otlp_http", 14250: "jaeger_grpc", 14268: "jaeger_http",
               6831: "jaeger_compact", 6832: "jaeger_binary", 5778: "sampling", 9411: "zipkin",
               16686: "query"}

# (page, environment block or None, program block, service name the trace must carry)
PROGRAMS = [
    ("clients-opentelemetry.md", "otlp-grpc-env", "otlp-grpc-python", "checkout"),
    ("clients-opentelemetry.md", "otlp-http-env", "otlp-http-python", "checkout"),
    ("clients-opentelemetry.md", "otlp-http-traces-endpoint-env", "otlp-http-python", "checkout"),
    ("clients-opentelemetry.md", "zipkin-env", "zipkin-python", "checkout"),
    ("clients-jaeger.md", None, "jaeger-python", "billing"),
]
PAYLOADS = [("istio-envoy.md", "zipkin-sidecar-span")]


def on_server(text: str, server: SpanlakeProcess) -> str:
    """The example with each default spanlake port replaced by the test server's port."""
    def swap(m: re.Match[str]) -> str:
        return str(server.ports[_PORT_NAMES[int(m.group(0))]])
    ports = "|".join(map(str, _PORT_NAMES))
    return re.sub(rf"(?<!\d)(?:{ports})(?!\d)", swap, text)


def read_back(server: SpanlakeProcess, trace_id: str) -> dict[str, Any]:
    """The trace from /api/traces/{id}, waiting for senders that deliver asynchronously (UDP)."""
    deadline = time.monotonic() + 10
    while True:
        reply = httpx.get(f"{server.query_url}/api/traces/{trace_id}", timeout=10)
        if reply.status_code == 200:
            (trace,) = reply.json()["data"]
            return dict(trace)
        assert reply.status_code == 404, reply.text
        assert time.monotonic() < deadline, f"trace {trace_id} never arrived"
        time.sleep(0.1)


def services(trace: dict[str, Any]) -> set[str]:
    return {p["serviceName"] for p in trace["processes"].values()}


def test_every_marked_example_is_run_here() -> None:
    used = {(page, name) for page, env, program, _ in PROGRAMS for name in (env, program) if name}
    used |= set(PAYLOADS)
    from tests.docs.test_security_examples import EXAMPLES  # that module imports this one
    used |= EXAMPLES
    marked = {(page.name, name) for page in PAGES for name in examples(page)}
    assert marked == used


@pytest.mark.parametrize(("page", "env_block", "program", "service"), PROGRAMS,
                         ids=[f"{env or prog}" for _, env, prog, _ in PROGRAMS])
def test_documented_client_configuration_delivers_a_trace(
        shared_spanlake_server: SpanlakeProcess, page: str, env_block: str | None, program: str,
        service: str) -> None:
    server = shared_spanlake_server
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "JAEGER_"))}
    if env_block:
        env |= env_assignments(on_server(example(page, env_block), server))
    code = on_server(example(page, program), server)
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    trace_id = run.stdout.split()[-1]
    trace = read_back(server, trace_id)
    assert services(trace) == {service}
    assert [s["operationName"] for s in trace["spans"]] in (["place-order"], ["charge"])


def test_documented_sidecar_span_is_accepted_and_read_back(shared_spanlake_server: SpanlakeProcess) -> None:
    server = shared_spanlake_server
    body = example("istio-envoy.md", "zipkin-sidecar-span")
    reply = httpx.post(f"{server.url('zipkin')}/api/v2/spans", content=body,
                       headers={"Content-Type": "application/json"}, timeout=10)
    assert reply.status_code == 202, reply.text
    (sent,) = json.loads(body)
    trace = read_back(server, sent["traceId"])
    assert services(trace) == {sent["localEndpoint"]["serviceName"]}
    (span,) = trace["spans"]
    tags = {t["key"]: t["value"] for t in span["tags"]}
    assert tags["http.method"] == "GET" and tags["span.kind"] == "server"
    assert tags["net.peer.ip"] == sent["remoteEndpoint"]["ipv4"]

