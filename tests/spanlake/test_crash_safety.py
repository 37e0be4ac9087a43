"""kill -9 a real ``spanlake serve``: nothing acknowledged is lost, no half segment is ever visible."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import grpc
import httpx
import pyarrow.parquet as pq
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

from tests.otlp_data import make_request, span_count
from tests.server import SpanlakeProcess

HOUR_NS = 3600 * 10**9


def _export(server: SpanlakeProcess, requests: list) -> int:
    """Send each request over OTLP gRPC; returns the number of acknowledged spans."""
    acked = 0
    with grpc.insecure_channel(server.otlp_grpc_endpoint) as channel:
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        for req in requests:
            reply = stub.Export(req, timeout=10)
            acked += span_count(req) - reply.partial_success.rejected_spans
    return acked


def _trace_ids(requests: list) -> set[str]:
    return {s.trace_id.hex() for r in requests for rs in r.resource_spans
            for ss in rs.scope_spans for s in ss.spans}


def _span_ids_by_trace(server: SpanlakeProcess, trace_ids: set[str]) -> dict[str, Counter[str]]:
    found = {}
    with httpx.Client(base_url=server.query_url, timeout=10) as client:
        for tid in trace_ids:
            reply = client.get(f"/api/traces/{tid}")
            assert reply.status_code == 200, reply.text
            found[tid] = Counter(s["spanID"] for s in reply.json()["data"][0]["spans"])
    return found


def test_acknowledged_spans_survive_kill_9(tmp_path: Path) -> None:
    server = SpanlakeProcess(tmp_path / "data", extra_args=["--flush-interval", "3600"]).start()
    requests = [make_request(traces=10, spans_per_trace=20) for _ in range(5)]
    acked = _export(server, requests)
    assert acked == 1000
    server.kill9()  # nothing was flushed: every span is only in the WAL

    server.start()
    try:
        found = _span_ids_by_trace(server, _trace_ids(requests))
        assert sum(sum(c.values()) for c in found.values()) == acked
        assert all(n == 1 for c in found.values() for n in c.values())  # none replayed twice
    finally:
        server.stop()


def test_kill_during_flush_leaves_no_half_segment(tmp_path: Path) -> None:
    data = tmp_path / "data"
    # One flush writes two segments (two hour partitions); the failpoint stalls it after the first
    # commit, and the test kills the process right there.
    server = SpanlakeProcess(data, extra_args=["--flush-interval", "3600", "--segment-max-spans", "100"],
                             env={"SPANLAKE_TEST_FLUSH_PAUSE": "60"}).start()
    now = time.time_ns()
    requests = [make_request(10, 10, start_ns=now - 2 * HOUR_NS), make_request(10, 10, start_ns=now)]
    assert _export(server, requests) == 200
    deadline = time.monotonic() + 20
    while not list(data.glob("spans/*/*/*/*.parquet")) and time.monotonic() < deadline:
        time.sleep(0.02)
    server.kill9()

    committed = list(data.glob("spans/*/*/*/*.parquet"))
    assert len(committed) == 1, "the flush should have been stopped after its first segment"
    assert pq.read_table(committed[0]).num_rows == 100  # the committed segment is whole

    server.env = {}
    server.start()
    try:
        assert not list(data.glob("spans/**/.*.tmp"))  # debris of the interrupted flush is gone
        found = _span_ids_by_trace(server, _trace_ids(requests))
        assert sum(sum(c.values()) for c in found.values()) == 200
        assert all(n == 1 for c in found.values() for n in c.values())
    finally:
        server.stop()
    assert len(list(data.glob("spans/*/*/*/*.parquet"))) == 2


def test_graceful_stop_flushes_everything_to_segments(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = SpanlakeProcess(data, extra_args=["--flush-interval", "3600"]).start()
    assert _export(server, [make_request(5, 4)]) == 20
    assert server.stop() == 0
    rows = sum(pq.read_table(p).num_rows for p in data.glob("spans/*/*/*/*.parquet"))
    assert rows == 20
    wal_files = list(data.glob("wal/*/*.wal"))
    assert all(p.stat().st_size == 0 for p in wal_files)
