"""``/api/sql`` on a real ``spanlake serve``: attacks, limits under load, fresh data, ``spanlake sql --url``.

The server runs with a 2 s SQL time limit and one SQL query at a time, so the limits show quickly.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub

from spanlake.storage.api import DEFAULT_TENANT
from tests.otlp_data import make_request, span_count
from tests.server import SpanlakeProcess
from tests.storage.sql_support import ATTACKS, HEAVY, attack_at
from tests.waiting import eventually

TIMEOUT_S = 2.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SpanlakeProcess]:
    s = SpanlakeProcess(tmp_path_factory.mktemp("sqlserve") / "data",
                        extra_args=["--sql-timeout", str(TIMEOUT_S), "--sql-max-concurrent", "1"]).start()
    yield s
    s.stop()


def sql(server: SpanlakeProcess, query: str, timeout: float = 30) -> httpx.Response:
    return httpx.post(f"{server.query_url}/api/sql", json={"query": query}, timeout=timeout)


@pytest.fixture(scope="module")
def otlp(server: SpanlakeProcess) -> Iterator[TraceServiceStub]:
    """One connected OTLP gRPC client, as an SDK's exporter keeps one."""
    with grpc.insecure_channel(server.otlp_grpc_endpoint) as channel:
        yield TraceServiceStub(channel)  # type: ignore[no-untyped-call]


def export(otlp: TraceServiceStub, service: str, traces: int = 5, spans_per_trace: int = 3) -> int:
    request = make_request(traces, spans_per_trace, service=service)
    otlp.Export(request, timeout=10)
    return span_count(request)


def count(server: SpanlakeProcess, service: str) -> int:
    r = sql(server, f"SELECT count(*) FROM spans WHERE service_name = '{service}'")
    assert r.status_code == 200, r.text
    return int(r.json()["rows"][0][0])


def test_spans_acknowledged_a_moment_ago_are_in_sql(server: SpanlakeProcess, otlp: TraceServiceStub) -> None:
    sent = export(otlp, "fresh")
    assert count(server, "fresh") == sent  # no wait: the flush interval is 5 s, the tail is queried


@pytest.mark.parametrize(("query", "message"), ATTACKS, ids=[q for q, _ in ATTACKS])
def test_attack_fails_and_the_server_keeps_serving(server: SpanlakeProcess, tmp_path: Path,
                                                   query: str, message: str) -> None:
    # Where a segment would be: the attacks aim at it, its neighbours and the WAL.
    partition = server.data_dir / "spans" / f"tenant={DEFAULT_TENANT}" / "date=2026-01-01" / "hour=00"
    segment = str(partition / "x.parquet")
    r = sql(server, attack_at(query, server.data_dir, segment, tmp_path))
    assert r.status_code == 400 and message in r.json()["error"]
    assert list(tmp_path.iterdir()) == []
    assert httpx.get(f"{server.query_url}/api/services", timeout=10).status_code == 200
    assert server.alive()


def test_heavy_query_is_interrupted_while_ingest_and_apis_answer(server: SpanlakeProcess,
                                                                 otlp: TraceServiceStub) -> None:
    export(otlp, "warm-up")  # connect first: the ack below times the server, not a channel set-up
    answers: list[tuple[float, httpx.Response]] = []

    def run_heavy() -> None:
        answer = sql(server, HEAVY)
        while answer.status_code == 503:  # lost the one slot to the probe below: try again
            answer = sql(server, HEAVY)
        answers.append((time.monotonic(), answer))

    def heavy_holds_the_slot() -> httpx.Response:
        probe = sql(server, "SELECT 1")
        assert probe.status_code == 503
        return probe

    heavy = threading.Thread(target=run_heavy)
    started = time.monotonic()
    heavy.start()
    busy = eventually(heavy_holds_the_slot, timeout=30)
    sent = export(otlp, "during-heavy-query")
    acked_at = time.monotonic()
    services = httpx.get(f"{server.query_url}/api/services", timeout=10)
    heavy.join()
    [(answered_at, answer)] = answers
    assert acked_at < answered_at  # the ingest was acknowledged while the query still ran
    assert services.status_code == 200
    assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
    assert answer.status_code == 400 and answer.json()["timeout"] is True
    assert TIMEOUT_S <= answered_at - started < TIMEOUT_S + 5  # interrupted at the limit, not at its end
    assert count(server, "during-heavy-query") == sent


def test_cli_queries_a_running_server(server: SpanlakeProcess, otlp: TraceServiceStub) -> None:
    sent = export(otlp, "via-cli")
    r = subprocess.run([sys.executable, "-m", "spanlake", "sql",
                        "SELECT service_name, count(*) AS spans FROM spans WHERE service_name = 'via-cli' "
                        "GROUP BY 1", "--url", server.query_url], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[2] == f"via-cli      | {sent:5d}"
    bad = subprocess.run([sys.executable, "-m", "spanlake", "sql", "ATTACH '/tmp/x.duckdb' AS x", "--url",
                          server.query_url], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "only SELECT queries are allowed" in bad.stderr
