"""The operator's view on a real server: health routes, and /metrics moving with real traffic."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from spanlake.admin import Health, make_app
from spanlake.metrics import Metrics
from tests.e2e.support import eventually
from tests.otlp_data import make_request
from tests.query.client import TestClient
from tests.server import SpanlakeProcess
from tests.spanlake.auth_support import bearer, write_tokens


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SpanlakeProcess]:
    tmp = tmp_path_factory.mktemp("admin")
    limits = tmp / "limits.toml"
    limits.write_text("[tenants.team-b]\nsql_max_concurrent = 1\ningest_rate = 1\ningest_burst = 5\n")
    proc = SpanlakeProcess(tmp / "data", extra_args=["--tokens-file", str(write_tokens(tmp)),
                                                     "--limits-file", str(limits),
                                                     "--flush-interval", "0.2"]).start()
    yield proc
    proc.stop()


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(server: SpanlakeProcess) -> Samples:
    reply = httpx.get(f"{server.url('admin')}/metrics", headers=bearer("admin"))
    assert reply.status_code == 200, reply.text
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(reply.text) for s in family.samples}


def value(all_samples: Samples, name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in all_samples.items() if n == name and set(labels.items()) <= ls)


def test_health_routes_answer_probes_without_credentials(server: SpanlakeProcess) -> None:
    base = server.url("admin")
    assert httpx.get(f"{base}/health/live").json() == {"status": "alive"}
    assert httpx.get(f"{base}/health/ready").status_code == 200
    jaeger = httpx.get(f"{base}/").json()
    assert jaeger["status"] == "Server available" and jaeger["upSince"].endswith("Z")


def test_metrics_need_the_admin_right(server: SpanlakeProcess) -> None:
    base = server.url("admin")
    assert httpx.get(f"{base}/metrics").status_code == 401
    assert httpx.get(f"{base}/metrics", headers=bearer("team-a")).status_code == 403


def test_ingest_is_counted_per_protocol_and_tenant(server: SpanlakeProcess) -> None:
    body = make_request(3, 4).SerializeToString()
    reply = httpx.post(f"{server.url('otlp_http')}/v1/traces", content=body,
                       headers={"content-type": "application/x-protobuf", **bearer("team-a")})
    assert reply.status_code == 200
    after = eventually(lambda: _flushed(samples(server)))
    assert value(after, "spanlake_receiver_accepted_spans_total", protocol="otlp_http", tenant="team-a") >= 12
    assert value(after, "spanlake_spans_received_total", protocol="otlp_http", tenant="team-a") >= 12
    assert value(after, "spanlake_segments", tenant="team-a") >= 1
    assert value(after, "spanlake_segment_bytes", tenant="team-a") > 0
    assert value(after, "spanlake_wal_fsync_duration_seconds_count") >= 1
    assert value(after, "spanlake_flush_size_spans_sum") >= 12
    assert value(after, "process_resident_memory_bytes") > 10**6
    assert value(after, "process_open_fds") > 0
    assert ("spanlake_wal_bytes", frozenset()) in after


def _flushed(s: Samples) -> Samples:
    assert value(s, "spanlake_flush_duration_seconds_count") >= 1
    return s


def test_refusals_are_counted_by_reason(server: SpanlakeProcess) -> None:
    httpx.get(f"{server.query_url}/api/services")
    httpx.get(f"{server.query_url}/api/services", headers=bearer("ingest"))
    for _ in range(3):  # team-b may take 5 spans at once, then 1 per second
        httpx.post(f"{server.url('otlp_http')}/v1/traces", content=make_request(1, 4).SerializeToString(),
                   headers={"content-type": "application/x-protobuf", **bearer("team-b")})
    s = samples(server)
    assert value(s, "spanlake_refused_requests_total", listener="query", reason="unauthenticated") >= 1
    assert value(s, "spanlake_refused_requests_total", listener="query", reason="forbidden",
                 tenant="team-a") >= 1
    assert value(s, "spanlake_receiver_refused_spans_total", tenant="team-b", reason="rate_limited") >= 4


def test_requests_refused_for_their_content_are_counted(server: SpanlakeProcess) -> None:
    import grpc

    garbage = b"\xff\x00 not a protobuf"
    reply = httpx.post(f"{server.url('otlp_http')}/v1/traces", content=garbage,
                       headers={"content-type": "application/x-protobuf", **bearer("team-a")})
    assert reply.status_code == 400
    with grpc.insecure_channel(server.otlp_grpc_endpoint) as channel:
        export = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export")
        with pytest.raises(grpc.RpcError) as info:
            export(garbage, metadata=tuple(bearer("team-a").items()), timeout=10)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    s = samples(server)
    assert value(s, "spanlake_refused_requests_total", listener="otlp_http", tenant="team-a",
                 reason="bad_request") >= 1
    assert value(s, "spanlake_refused_requests_total", listener="otlp_grpc", tenant="team-a",
                 reason="bad_request") >= 1


def test_query_latency_is_labelled_by_api_and_route(server: SpanlakeProcess) -> None:
    httpx.get(f"{server.query_url}/api/traces/0af7651916cd43dd8448eb211c80319c", headers=bearer("team-a"))
    httpx.post(f"{server.query_url}/api/sql", json={"query": "SELECT 1"}, headers=bearer("team-a"))
    httpx.post(f"{server.query_url}/api/sql", json={"query": "SELEC nonsense"}, headers=bearer("team-a"))
    s = samples(server)
    assert value(s, "spanlake_query_latency_seconds_count", api="jaeger_v1",
                 route="/api/traces/{trace_id}", status="404") >= 1
    assert value(s, "spanlake_query_latency_seconds_count", api="sql", route="/api/sql") >= 2
    assert value(s, "spanlake_sql_queries_total", tenant="team-a", outcome="ok") >= 1
    assert value(s, "spanlake_sql_queries_total", tenant="team-a", outcome="error") >= 1


def test_responses_carry_a_request_id(server: SpanlakeProcess) -> None:
    headers = {**bearer("team-a"), "x-request-id": "abc-123"}
    mine = httpx.get(f"{server.query_url}/api/services", headers=headers)
    assert mine.headers["x-request-id"] == "abc-123"
    fresh = httpx.get(f"{server.query_url}/api/services", headers=bearer("team-a"))
    assert len(fresh.headers["x-request-id"]) == 16


def test_ready_only_after_wal_replay_and_listeners(tmp_path: Path) -> None:
    health = Health()
    client = TestClient(make_app(health, Metrics()))
    assert client.get("/health/live").status_code == 200
    not_ready = client.get("/health/ready")
    assert not_ready.status_code == 503
    assert not_ready.json()["waiting_for"] == ["wal replay", "listeners"]
    assert client.get("/").json()["status"] == "Server not available"
    health.mark(wal_replayed=True)
    assert client.get("/health/ready").status_code == 503
    health.mark(listeners_up=True)
    assert client.get("/health/ready").status_code == 200
    time.sleep(0.01)
    assert client.get("/").json()["status"] == "Server available"
    health.mark(stopping=True)
    assert client.get("/health/ready").status_code == 503


def test_a_starting_server_is_live_but_not_ready_until_its_store_is_open(tmp_path: Path) -> None:
    proc = SpanlakeProcess(tmp_path / "data", env={"SPANLAKE_TEST_START_PAUSE": "5"})
    admin = proc.url("admin")
    starting = threading.Thread(target=proc.start)
    starting.start()
    try:
        live = eventually(lambda: _status(f"{admin}/health/live"))
        assert live == 200
        ready = httpx.get(f"{admin}/health/ready")
        assert ready.status_code == 503  # the store (WAL replay) is not open yet
        assert "wal replay" in ready.json()["waiting_for"]
        assert httpx.get(f"{admin}/").status_code == 503
        starting.join(30)
        assert httpx.get(f"{admin}/health/ready").status_code == 200
    finally:
        starting.join(30)
        proc.stop()


def _status(url: str) -> int:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.ConnectError as exc:  # not listening yet
        raise AssertionError(str(exc)) from None
