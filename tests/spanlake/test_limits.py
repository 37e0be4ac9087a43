"""Per-tenant limits, through the apps and servers ``serve`` builds: each protocol's answer, and the
counter that records it."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pyarrow as pa
import pytest

from spanlake.config import Settings
from spanlake.limits import LimitsError, RateLimited, TenantLimits, TraceTooLarge, load_limits
from spanlake.listeners import Listeners
from spanlake.serve import Runtime, _bind
from tests.otlp_data import make_request
from tests.query.client import TestClient
from tests.spanlake.auth_support import bearer, runtime_and_store, settings_with_auth

LIMITS = """
[defaults]
max_bytes_per_trace = 200000

[tenants.team-a]
ingest_rate = 10
ingest_burst = 40
sql_max_concurrent = 1
retention_hours = 24

[tenants.team-b]
max_bytes_per_trace = 3000
"""
OTLP = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


@pytest.fixture
def built(tmp_path: Path) -> Iterator[tuple[Runtime, Listeners]]:
    (tmp_path / "limits.toml").write_text(LIMITS)
    settings = dataclasses.replace(settings_with_auth(tmp_path), limits_file=tmp_path / "limits.toml")
    runtime, store = runtime_and_store(settings)
    yield runtime, runtime.build(store)
    store.close()


def _post(runtime_listeners: tuple[Runtime, Listeners], tenant: str, traces: int, spans: int) -> int:
    (otlp,) = [h for h in runtime_listeners[1].http if h.name == "otlp_http"]
    reply = TestClient(otlp.app).post("/v1/traces", content=make_request(traces, spans).SerializeToString(),
                                      headers={"content-type": "application/x-protobuf", **bearer(tenant)})
    if reply.status_code == 503:
        assert reply.headers["retry-after"] == "1"
    return reply.status_code


def _count(runtime: Runtime, name: str, **labels: str) -> float:
    return runtime.metrics.registry.get_sample_value(name, labels) or 0.0


def test_ingest_over_the_rate_gets_a_retryable_answer_and_is_counted(built: tuple[Runtime, Listeners]
                                                                     ) -> None:
    assert _post(built, "team-a", 10, 4) == 200  # the burst of 40 spans
    assert _post(built, "team-a", 1, 4) == 503  # 10 spans/s: not yet
    assert _post(built, "team-b", 10, 4) == 200  # another tenant has its own bucket
    assert _count(built[0], "spanlake_receiver_refused_spans_total", protocol="otlp_http", tenant="team-a",
                  reason="rate_limited") == 4


def test_a_trace_over_its_bytes_is_a_client_error(built: tuple[Runtime, Listeners]) -> None:
    assert _post(built, "team-b", 1, 40) == 400
    assert _count(built[0], "spanlake_receiver_refused_spans_total", protocol="otlp_http", tenant="team-b",
                  reason="trace_too_large") == 40
    assert _post(built, "team-b", 1, 1) == 200


def test_grpc_gets_resource_exhausted_and_invalid_argument(built: tuple[Runtime, Listeners]) -> None:
    runtime, out = built
    (listener,) = [g for g in out.grpc if g.name == "otlp_grpc"]
    _bind(listener, "127.0.0.1", runtime.security)
    listener.server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{listener.port}") as channel:
            export = channel.unary_unary(OTLP)
            export(make_request(10, 4).SerializeToString(), metadata=tuple(bearer("team-a").items()))
            with pytest.raises(grpc.RpcError) as over_rate:
                export(make_request(1, 4).SerializeToString(), metadata=tuple(bearer("team-a").items()))
            assert over_rate.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            with pytest.raises(grpc.RpcError) as too_big:
                export(make_request(1, 40).SerializeToString(), metadata=tuple(bearer("team-b").items()))
            assert too_big.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "bytes per trace" in (too_big.value.details() or "")
    finally:
        listener.server.stop(None)


def test_sql_over_the_tenants_concurrency_is_refused(built: tuple[Runtime, Listeners]) -> None:
    runtime, out = built
    (query,) = [h for h in out.http if h.name == "query"]
    client = TestClient(query.app)
    assert runtime.limits.sql_enter("team-a")  # one query of team-a is running
    try:
        busy = client.post("/api/sql", json={"query": "SELECT 1"}, headers=bearer("team-a"))
        assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
        assert "team-a" in busy.json()["error"]
        other = client.post("/api/sql", json={"query": "SELECT 1"}, headers=bearer("team-b"))
        assert other.status_code == 200
    finally:
        runtime.limits.sql_exit("team-a")
    assert client.post("/api/sql", json={"query": "SELECT 1"}, headers=bearer("team-a")).status_code == 200
    assert _count(runtime, "spanlake_sql_queries_total", tenant="team-a", outcome="refused") == 1
    assert _count(runtime, "spanlake_sql_queries_total", tenant="team-a", outcome="ok") == 1


def test_retention_hours_come_per_tenant(built: tuple[Runtime, Listeners]) -> None:
    retention = built[0].limits.retention(["team-a", "team-b", "team-c"])
    assert retention == {"team-a": 24.0, "team-b": 0.0, "team-c": 0.0}


def _table(traces: int, spans: int) -> pa.Table:
    from spanlake.collector.formats.otlp import otlp_request_to_spans
    return otlp_request_to_spans(make_request(traces, spans)).spans


def test_bytes_accumulate_across_requests_of_one_trace() -> None:
    limits = load_limits(None, Settings())
    table = _table(1, 2)
    limits.defaults = dataclasses.replace(limits.defaults, max_bytes_per_trace=int(table.nbytes * 1.5))
    limits.admit("t", table)
    with pytest.raises(TraceTooLarge):
        limits.admit("t", table)  # the same trace ID again: over the cap in total
    limits.admit("t", _table(1, 2))  # another trace is fine


def test_a_refused_request_takes_nothing_from_the_rate() -> None:
    limits = TenantLimits(dataclasses.replace(load_limits(None, Settings()).defaults, ingest_rate=1,
                                              ingest_burst=8, max_bytes_per_trace=1), {}, 4)
    with pytest.raises(TraceTooLarge):
        limits.admit("t", _table(1, 8))
    limits.defaults = dataclasses.replace(limits.defaults, max_bytes_per_trace=0)
    limits.admit("t", _table(1, 8))  # the whole burst is still there
    with pytest.raises(RateLimited):
        limits.admit("t", _table(1, 1))


def test_a_batch_larger_than_the_burst_passes_on_a_full_bucket() -> None:
    limits = TenantLimits(dataclasses.replace(load_limits(None, Settings()).defaults, ingest_rate=1,
                                              ingest_burst=2), {}, 4)
    limits.admit("t", _table(1, 5))
    with pytest.raises(RateLimited):
        limits.admit("t", _table(1, 1))


def test_concurrent_sql_slots_are_counted_exactly() -> None:
    limits = TenantLimits(dataclasses.replace(load_limits(None, Settings()).defaults,
                                              sql_max_concurrent=3), {}, 4)
    taken = []
    threads = [threading.Thread(target=lambda: taken.append(limits.sql_enter("t"))) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(taken) == [False] * 7 + [True] * 3


@pytest.mark.parametrize(("text", "message"), [
    ("[defaults]\ningest_rate = -1\n", "must be a number >= 0"),
    ("[defaults]\nrate = 1\n", "unknown keys ['rate']"),
    ("[tenant.a]\ningest_rate = 1\n", "unknown sections ['tenant']"),
    ("[defaults\n", "limits.toml"),
])
def test_a_bad_limits_file_names_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "limits.toml"
    path.write_text(text)
    with pytest.raises(LimitsError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_limits(path, Settings())
