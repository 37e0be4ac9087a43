"""Issue 14, cases 1 and 2 on a real ``spanlake serve`` with its data on a small real tmpfs:
ingest is refused with the protocols' retryable answers before the disk is full, queries keep
working, the server starts on a full disk and serves queries, and recovers by itself."""

from __future__ import annotations

from pathlib import Path

import grpc
import httpx

from tests.e2e.hostile import grpc_export, post_otlp, retry_delay
from tests.e2e.support import eventually
from tests.otlp_data import make_request
from tests.server import SpanlakeProcess
from tests.tmpfs import fill, small_tmpfs

RESERVE = 8 * 1024 * 1024


def _trace_found(server: SpanlakeProcess, trace_id: str, spans: int) -> None:
    reply = httpx.get(f"{server.query_url}/api/traces/{trace_id}", timeout=30)
    assert reply.status_code == 200, reply.text
    assert len(reply.json()["data"][0]["spans"]) == spans


def _refused_retryably(server: SpanlakeProcess) -> None:
    reply = post_otlp(server, make_request(1, 3).SerializeToString())
    assert reply.status_code == 503, reply.text
    assert int(reply.headers["Retry-After"]) >= 1
    error = grpc_export(server, make_request(1, 3))
    assert error is not None and error.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
    delay = retry_delay(error)
    assert delay is not None and delay.seconds >= 1


def _accepted(server: SpanlakeProcess, body: bytes) -> None:
    reply = post_otlp(server, body)
    assert reply.status_code == 200, reply.text


def _flushed(data: Path) -> None:
    assert list(data.glob("spans/**/*.parquet"))


def test_full_disk_refuses_ingest_retryably_serves_queries_and_recovers(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "disk", 64) as disk:
        server = SpanlakeProcess(disk / "data", extra_args=[
            "--flush-interval", "3600", "--disk-reserve-bytes", str(RESERVE)])
        server.log_path = tmp_path / "server.log"  # the log must not share the full disk
        server.start()
        try:
            before = make_request(1, 5)
            assert post_otlp(server, before.SerializeToString()).status_code == 200
            trace_id = before.resource_spans[0].scope_spans[0].spans[0].trace_id.hex()

            ballast = fill(disk, leave_bytes=RESERVE // 2)  # inside the reserve, not yet full
            eventually(lambda: _refused_retryably(server))
            _trace_found(server, trace_id, 5)  # queries keep working

            # A restart on a completely full disk: the WAL replays, the flush fails, queries work.
            server.kill9()
            fill(disk)
            server.start()
            _trace_found(server, trace_id, 5)
            _refused_retryably(server)

            ballast.unlink()  # space returns: ingest and flushing resume with no restart
            after = make_request(1, 4)
            eventually(lambda: _accepted(server, after.SerializeToString()))
            eventually(lambda: _flushed(disk / "data"), timeout=30)
            _trace_found(server, after.resource_spans[0].scope_spans[0].spans[0].trace_id.hex(), 4)
            _trace_found(server, trace_id, 5)
        finally:
            server.stop()
