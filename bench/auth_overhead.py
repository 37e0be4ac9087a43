"""What authentication, tenants and metrics cost per request: the same requests against a server
without a tokens file and one with a tokens file, limits and TLS off.

Usage: ``python -m bench.auth_overhead [--requests 2000]``. Sends small OTLP/HTTP requests (10 spans)
and ``GET /api/services`` one after another from one client and prints the median and p99 latency of
each, per server. Sequential on purpose: it measures the per-request path, not throughput.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from bench.spanlake_side import free_port

TOKEN = "bench-token-0123456789abcdef"
TOKENS = f'[[token]]\nname = "bench"\ntoken = "{TOKEN}"\ntenant = "bench"\nrights = ["ingest", "query"]\n'


@contextmanager
def _server(data_dir: Path, extra: list[str]) -> Iterator[dict[str, int]]:
    """``spanlake serve`` with the OTLP/HTTP, query and admin ports; ready when /health/ready says so."""
    ports = {"otlp-http": free_port(), "query": free_port(), "admin": free_port()}
    args = [sys.executable, "-m", "spanlake", "serve", "--data-dir", str(data_dir), "--host", "127.0.0.1",
            "--log-level", "warning", *extra]
    for flag in ("otlp-grpc", "jaeger-grpc", "jaeger-http", "jaeger-compact", "jaeger-binary", "sampling",
                 "zipkin"):
        args += [f"--{flag}-port", "0"]
    for name, port in ports.items():
        args += [f"--{name}-port", str(port)]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, "spanlake serve did not start"
            try:
                if httpx.get(f"http://127.0.0.1:{ports['admin']}/health/ready").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        yield ports
    finally:
        proc.terminate()
        proc.wait(30)


def _request() -> bytes:
    req = ExportTraceServiceRequest()
    spans = req.resource_spans.add().scope_spans.add().spans
    trace_id, now = os.urandom(16), time.time_ns()
    for i in range(10):
        spans.add(trace_id=trace_id, span_id=os.urandom(8), name=f"op-{i}", start_time_unix_nano=now,
                  end_time_unix_nano=now + 1000)
    return req.SerializeToString()


def _timed(call: object, n: int) -> tuple[float, float]:
    samples = []
    for _ in range(n):
        began = time.perf_counter()
        reply = call()  # type: ignore[operator]
        samples.append(time.perf_counter() - began)
        assert reply.status_code == 200, reply.text
    samples.sort()
    return statistics.median(samples) * 1000, samples[int(len(samples) * 0.99)] * 1000


def run(requests: int) -> None:
    body = _request()
    with tempfile.TemporaryDirectory() as tmp:
        tokens = Path(tmp, "tokens.toml")
        tokens.write_text(TOKENS)
        for label, args, headers in [("no auth", [], {}),
                                     ("tokens", ["--tokens-file", str(tokens)],
                                      {"authorization": f"Bearer {TOKEN}"})]:
            data = Path(tmp, label.replace(" ", "-"))
            with _server(data, args) as ports, httpx.Client(headers=headers) as c:
                url = f"http://127.0.0.1:{ports['otlp-http']}/v1/traces"
                ingest = _timed(lambda u=url: c.post(u, content=body,
                                                     headers={"content-type": "application/x-protobuf"}),
                                requests)
                query = f"http://127.0.0.1:{ports['query']}/api/services"
                services = _timed(lambda q=query: c.get(q), requests)
            print(f"{label:8}  ingest p50 {ingest[0]:.2f} ms p99 {ingest[1]:.2f} ms   "
                  f"/api/services p50 {services[0]:.2f} ms p99 {services[1]:.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    run(parser.parse_args().requests)


if __name__ == "__main__":
    main()
