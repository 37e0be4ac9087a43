"""``--self-trace`` and ``--log-format json`` on a real server with auth on."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.support import eventually
from tests.server import SpanlakeProcess
from tests.spanlake.auth_support import TOKENS, TOKENS_TOML, bearer

OPS_TOKEN = "ops-token-0123456789abcdef"  # reads the default tenant, where self-trace spans go
OPS = {"authorization": f"Bearer {OPS_TOKEN}"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SpanlakeProcess]:
    tmp = tmp_path_factory.mktemp("selftrace")
    tokens = tmp / "tokens.toml"
    tokens.write_text(TOKENS_TOML + f'\n[[token]]\nname = "ops"\ntoken = "{OPS_TOKEN}"\n'
                      'tenant = "single-tenant"\nrights = ["query"]\n')
    proc = SpanlakeProcess(tmp / "data", extra_args=["--self-trace", "--tokens-file", str(tokens),
                                                     "--log-format", "json", "--log-level", "debug"]).start()
    yield proc
    proc.stop()


def _traced(server: SpanlakeProcess, trace_id: str) -> dict[str, Any]:
    reply = httpx.get(f"{server.query_url}/api/traces/{trace_id}", headers=OPS)
    assert reply.status_code == 200, reply.text
    (trace,) = reply.json()["data"]
    return dict(trace)


def test_requests_become_spanlake_spans_in_the_callers_trace(server: SpanlakeProcess) -> None:
    trace_id, parent = os.urandom(16).hex(), os.urandom(8).hex()
    reply = httpx.get(f"{server.query_url}/api/services", headers={
        **bearer("team-a"), "traceparent": f"00-{trace_id}-{parent}-01", "x-request-id": "rid-selftrace"})
    assert reply.status_code == 200
    trace = eventually(lambda: _traced(server, trace_id))
    (span,) = trace["spans"]
    assert trace["processes"][span["processID"]]["serviceName"] == "spanlake"
    assert span["operationName"] == "GET /api/services"
    assert [r["spanID"] for r in span["references"]] == [parent]
    tags = {t["key"]: t["value"] for t in span["tags"]}
    assert tags["http.response.status_code"] == 200
    assert tags["spanlake.request_id"] == "rid-selftrace"
    assert tags["spanlake.listener"] == "query"


def test_grpc_calls_become_spans_too(server: SpanlakeProcess) -> None:
    import grpc

    from tests.otlp_data import make_request

    trace_id, parent = os.urandom(16).hex(), os.urandom(8).hex()
    with grpc.insecure_channel(server.otlp_grpc_endpoint) as channel:
        export = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")
        export(make_request(1, 2).SerializeToString(), timeout=10,
               metadata=(*bearer("team-a").items(), ("traceparent", f"00-{trace_id}-{parent}-01")))
    trace = eventually(lambda: _traced(server, trace_id))
    (span,) = trace["spans"]
    assert span["operationName"] == "opentelemetry.proto.collector.trace.v1.TraceService/Export"
    tags = {t["key"]: t["value"] for t in span["tags"]}
    assert tags["rpc.system"] == "grpc" and tags["rpc.grpc.status_code"] == 0
    assert tags["rpc.method"] == "Export" and tags["spanlake.listener"] == "otlp_grpc"


def test_the_export_itself_is_never_traced(server: SpanlakeProcess) -> None:
    for _ in range(2):  # two exports in sequence: a traced first export would show with the second
        trace_id = os.urandom(16).hex()
        parent = {"traceparent": f"00-{trace_id}-{'1' * 16}-01"}
        httpx.get(f"{server.query_url}/api/services", headers={**bearer("team-a"), **parent})
        eventually(lambda t=trace_id: _traced(server, t))
    ops = httpx.get(f"{server.query_url}/api/operations", params={"service": "spanlake"}, headers=OPS).json()
    names = {o["name"] for o in ops["data"]}
    assert "GET /api/services" in names
    assert "POST /v1/traces" not in names


def test_json_logs_carry_request_ids_and_never_a_token(server: SpanlakeProcess) -> None:
    httpx.get(f"{server.query_url}/api/services", headers={**bearer("team-a"), "x-request-id": "rid-json-1"})
    httpx.get(f"{server.query_url}/api/services", headers={"authorization": "Bearer guessed-secret-0123456"})

    def logged() -> list[dict[str, Any]]:
        lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
        assert any(r.get("request_id") == "rid-json-1" for r in lines)
        return lines

    records = eventually(logged)
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    assert any(r["message"].startswith("spanlake ready") for r in records)
    text = server.log()
    for secret in [*TOKENS.values(), "guessed-secret-0123456", OPS_TOKEN]:
        assert secret not in text
