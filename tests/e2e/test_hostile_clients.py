"""Issue 14, cases 3 to 9, against a real ``spanlake serve`` with small limits: every limit answers
in the protocol's own terms (never a 5xx), data-quality rules apply per span, slow clients are cut
off, and the server stays up throughout."""

from __future__ import annotations

import gzip
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest

from tests.e2e import valid_payloads as valid
from tests.e2e.hostile import grpc_export, partial_success, post_otlp, retry_delay
from tests.e2e.support import eventually, v1_trace
from tests.jaeger_model import thrift_batch_bytes
from tests.otlp_data import make_request
from tests.server import SpanlakeProcess

LIMITS = ["--max-spans-per-request", "200", "--max-spans-per-trace", "100",
          "--sql-max-body-bytes", "65536", "--sql-max-result-bytes", "1000000",
          "--http-header-timeout", "1", "--http-body-timeout", "1",
          "--search-max-window-hours", "48", "--search-max-results", "100",
          "--max-span-age-hours", "24", "--max-span-future-hours", "1"]
HTTP_PORTS = ["otlp_http", "jaeger_http", "zipkin", "sampling", "query"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SpanlakeProcess]:
    proc = SpanlakeProcess(tmp_path_factory.mktemp("hostile") / "data", extra_args=LIMITS)
    yield proc.start()
    assert proc.alive()
    proc.stop()


def _trace_hex(request: object) -> str:
    return request.resource_spans[0].scope_spans[0].spans[0].trace_id.hex()  # type: ignore[attr-defined]


# ---- case 3: per-trace limits -----------------------------------------------------------------


def test_spans_over_the_per_trace_limit_are_rejected_at_ingest(server: SpanlakeProcess) -> None:
    request = make_request(1, 150)
    rejected, message = partial_success(post_otlp(server, request.SerializeToString()))
    assert rejected == 50 and "per-trace limit" in message
    assert len(eventually(lambda: v1_trace(server, _trace_hex(request)))["spans"]) == 100


def test_a_trace_bigger_than_the_read_limit_comes_back_cut_with_a_warning(tmp_path: Path) -> None:
    proc = SpanlakeProcess(tmp_path / "data", extra_args=["--max-spans-per-trace", "1000"]).start()
    request = make_request(1, 300)
    try:
        assert partial_success(post_otlp(proc, request.SerializeToString()))[0] == 0
    finally:
        proc.stop()
    proc.extra_args = ["--max-spans-per-trace", "100"]
    proc.start()
    try:
        trace = v1_trace(proc, _trace_hex(request))
        assert len(trace["spans"]) == 100
        assert any("PARTIAL" in w for w in trace["warnings"])
        first = sorted(s.start_time_unix_nano for s in request.resource_spans[0].scope_spans[0].spans)[:100]
        assert sorted(s["startTime"] for s in trace["spans"]) == [t // 1000 for t in first]
    finally:
        proc.stop()


# ---- case 4: SQL -----------------------------------------------------------------------------


def _sql(server: SpanlakeProcess, body: bytes, content_type: str = "application/json") -> httpx.Response:
    return httpx.post(f"{server.query_url}/api/sql", content=body, headers={"Content-Type": content_type},
                      timeout=60)


def test_sql_result_over_the_byte_limit_is_an_error(server: SpanlakeProcess) -> None:
    reply = _sql(server, json.dumps({"query": "SELECT repeat('x', 400000) AS x FROM range(5)"}).encode())
    assert reply.status_code == 400 and "sql_max_result_bytes" in reply.json()["error"]
    ok = _sql(server, json.dumps({"query": "SELECT repeat('x', 1000) AS x FROM range(5)"}).encode())
    assert ok.status_code == 200 and len(ok.json()["rows"]) == 5


def test_sql_body_over_the_limit_is_413_and_nul_bytes_get_a_short_400(server: SpanlakeProcess) -> None:
    big = _sql(server, json.dumps({"query": "SELECT 1 -- " + "x" * 70000}).encode())
    assert big.status_code == 413 and "sql_max_body_bytes" in big.json()["error"]
    nul = _sql(server, b"\x00" * 60000, "text/plain")
    assert nul.status_code == 400 and len(nul.content) < 5000


# ---- cases 5 and 6: backpressure clients keep, and refusals clients do not retry ------------------


def test_a_request_over_the_span_limit_is_refused_as_not_retryable(server: SpanlakeProcess) -> None:
    request = make_request(3, 100)  # 300 spans: over --max-spans-per-request 200
    reply = post_otlp(server, request.SerializeToString())
    assert reply.status_code == 413 and "max-spans-per-request" in reply.text
    error = grpc_export(server, request)
    assert error is not None and error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[attr-defined]
    assert retry_delay(error) is None  # no RetryInfo: OTLP clients must not retry it


def test_a_full_buffer_is_retryable_and_checked_before_decoding(tmp_path: Path) -> None:
    # The failpoint stalls the flush that a refusal wakes, so the buffer stays full for the test.
    proc = SpanlakeProcess(tmp_path / "data", extra_args=["--max-buffered-spans", "100", "--flush-interval",
                                                          "3600"], env={"SPANLAKE_TEST_FLUSH_PAUSE": "30"})
    proc.start()
    try:
        # Bigger than the whole buffer, into an empty one: accepted (it used to be refused forever).
        assert partial_success(post_otlp(proc, make_request(1, 150).SerializeToString()))[0] == 0
        error = grpc_export(proc, make_request(1, 5))
        assert error is not None and error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[attr-defined]
        delay = retry_delay(error)
        assert delay is not None and delay.seconds >= 1
        garbage = post_otlp(proc, b"\xff" * 1000)  # refused before it is even decoded
        assert garbage.status_code == 503 and garbage.headers["Retry-After"]
    finally:
        proc.kill9()  # a graceful stop would wait out the stalled flush


# ---- case 7: hostile input gets 4xx ---------------------------------------------------------------


def _nested_anyvalue(depth: int) -> dict[str, object]:
    value: dict[str, object] = {"stringValue": "x"}
    for _ in range(depth):
        value = {"kvlistValue": {"values": [{"key": "k", "value": value}]}}
    return value


def _otlp_json(span: dict[str, object]) -> bytes:
    now = time.time_ns()
    base = {"traceId": "5" * 32, "spanId": "6" * 16, "name": "x", "startTimeUnixNano": str(now),
            "endTimeUnixNano": str(now + 1000)}
    return _dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{**base, **span}]}]}]})


def _dumps(value: object) -> bytes:
    import sys
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(10_000)  # the test builds what a hostile client would send
    try:
        return json.dumps(value).encode()
    finally:
        sys.setrecursionlimit(limit)


def _jaeger_thrift(**span: int) -> bytes:
    batch = valid.jaeger_batch(77, "hostile")
    for s in batch["spans"]:
        s.update(span)
    return thrift_batch_bytes(batch)


NESTED_JSON = b"[" * 3000 + b"]" * 3000
HOSTILE = [
    # (port, method, path, content type, body, params)
    ("otlp_http", "POST", "/v1/traces", "application/json",
     _otlp_json({"attributes": [{"key": "deep", "value": _nested_anyvalue(300)}]}), None),
    ("otlp_http", "POST", "/v1/traces", "application/json", _otlp_json({"name": "\ud800"}), None),
    ("otlp_http", "POST", "/v1/traces", "application/json",
     _otlp_json({"name": "x"}).replace(b'"name": "x"', b'"name": "\\ud800"'), None),
    ("zipkin", "POST", "/api/v2/spans", "application/json", NESTED_JSON, None),
    ("zipkin", "POST", "/api/v1/spans", "application/json", NESTED_JSON, None),
    ("zipkin", "POST", "/api/v2/spans", "application/json",
     b'[{"traceId": "1", "id": "2", "tags": {"a": ' + NESTED_JSON + b"}}]", None),
    ("jaeger_http", "POST", "/api/traces", "application/x-thrift", _jaeger_thrift(startTime=2**63 - 1), None),
    ("jaeger_http", "POST", "/api/traces", "application/x-thrift", _jaeger_thrift(duration=2**63 - 1), None),
    ("query", "POST", "/api/transform", "application/json",
     _otlp_json({"attributes": [{"key": "deep", "value": _nested_anyvalue(300)}]}), None),
    ("query", "POST", "/api/transform", "application/json", NESTED_JSON, None),
    ("query", "GET", "/api/traces", None, None, {"service": "s", "tags": NESTED_JSON.decode()}),
    ("query", "GET", "/api/traces", None, None, {"service": "s", "minDuration": "99999999999h"}),
    ("query", "GET", "/api/traces", None, None, {"service": "s", "start": str(2**62), "end": str(2**63)}),
    ("query", "GET", "/api/traces", None, None, {"service": "s", "start": "0"}),
    ("query", "GET", "/api/traces", None, None, {"service": "s", "limit": "100000"}),
    ("query", "GET", "/api/metrics/latencies", None, None,
     {"service": "s", "quantile": "0.9", "lookback": str(2**62), "step": str(2**60)}),
    ("query", "GET", "/api/metrics/calls", None, None, {"service": "s", "lookback": "999999999999999999"}),
    ("query", "GET", "/api/dependencies", None, None, {"endTs": str(2**62), "lookback": str(2**62)}),
    ("query", "GET", "/api/dependencies", None, None, {"lookback": "99999999999999999999999"}),
    ("query", "GET", "/api/v3/traces", None, None, {
        "query.service_name": "s", "query.start_time_min": "0001-01-01T00:00:00Z",
        "query.start_time_max": "9999-12-31T23:59:59Z"}),
    ("query", "GET", "/static/index.html%00.js", None, None, None),
    ("query", "GET", "/static/" + "a" * 5000, None, None, None),
]


@pytest.mark.parametrize("case", HOSTILE, ids=[f"{c[0]}{c[2][:30]}-{i}" for i, c in enumerate(HOSTILE)])
def test_hostile_input_gets_a_client_error(server: SpanlakeProcess, case: tuple) -> None:  # type: ignore[type-arg]
    port, method, path, content_type, body, params = case
    headers = {"Content-Type": content_type} if content_type else {}
    reply = httpx.request(method, server.url(port) + path, content=body, params=params, headers=headers,
                          timeout=60)
    assert 400 <= reply.status_code < 500, (reply.status_code, reply.text[:500])
    assert server.alive()


# ---- case 8: slow clients -----------------------------------------------------------------------


def _held_open(server: SpanlakeProcess, port: str, data: bytes) -> bytes:
    """Send ``data`` (an unfinished request) and read until the server closes; b"" if it waits."""
    with socket.create_connection(("127.0.0.1", server.ports[port]), timeout=10) as sock:
        sock.sendall(data)
        received = b""
        try:
            while chunk := sock.recv(4096):
                received += chunk
        except TimeoutError:
            return b"(still open after 10 s)"
        return received or b"(closed)"


@pytest.mark.parametrize("port", HTTP_PORTS)
def test_half_sent_headers_are_cut_off(server: SpanlakeProcess, port: str) -> None:
    answer = _held_open(server, port, b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Ty")
    assert answer.startswith(b"HTTP/1.1 408"), answer


@pytest.mark.parametrize("port", HTTP_PORTS)
def test_half_sent_bodies_are_cut_off(server: SpanlakeProcess, port: str) -> None:
    path = {"otlp_http": "/v1/traces", "jaeger_http": "/api/traces", "zipkin": "/api/v2/spans",
            "sampling": "/sampling", "query": "/api/sql"}[port]
    media = "application/x-thrift" if port == "jaeger_http" else "application/json"
    answer = _held_open(server, port, f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {media}"
                                      f"\r\nContent-Length: 1000\r\n\r\n{{\"query\": ".encode())
    assert b"still open" not in answer, answer


# ---- case 9: data quality -------------------------------------------------------------------------


def test_negative_duration_is_stored_as_zero_with_a_warning(server: SpanlakeProcess) -> None:
    request = make_request(1, 2)
    span = request.resource_spans[0].scope_spans[0].spans[1]
    span.end_time_unix_nano = span.start_time_unix_nano - 5_000_000
    assert partial_success(post_otlp(server, request.SerializeToString()))[0] == 0
    spans = eventually(lambda: v1_trace(server, _trace_hex(request)))["spans"]
    (clamped,) = [s for s in spans if s["spanID"] == span.span_id.hex()]
    assert clamped["duration"] == 0
    assert any("negative duration" in w for w in clamped["warnings"])


def test_start_times_outside_the_window_are_rejected_per_span(server: SpanlakeProcess) -> None:
    request = make_request(3, 2)
    spans = request.resource_spans[0].scope_spans[0].spans
    spans[0].start_time_unix_nano = 1_000_000_000  # 1970
    spans[0].end_time_unix_nano = 2_000_000_000
    spans[2].start_time_unix_nano = 2**64 - 1  # past int64: used to fail the whole request
    rejected, message = partial_success(post_otlp(server, request.SerializeToString()))
    assert rejected == 2 and "outside the accepted window" in message
    assert len(eventually(lambda: v1_trace(server, spans[4].trace_id.hex()))["spans"]) == 2
    assert not list(server.data_dir.glob("spans/date=1970*"))


def test_gzip_with_trailing_garbage_is_400(server: SpanlakeProcess) -> None:
    body = gzip.compress(make_request(1, 1).SerializeToString()) + b"trailing garbage"
    assert post_otlp(server, body, {"Content-Encoding": "gzip"}).status_code == 400
    zipkin = httpx.post(f"{server.url('zipkin')}/api/v2/spans", content=gzip.compress(b"[]") + b"xx",
                        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}, timeout=30)
    assert zipkin.status_code == 400
