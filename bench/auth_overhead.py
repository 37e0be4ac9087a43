"""What authentication, tenants and metrics cost per request: the same requests against a server
without a tokens file and one with a tokens file, limits and TLS off.

Usage: ``python -m bench.auth_overhead [--requests 2000]``. Sends small OTLP/HTTP requests (10 spans)
and ``GET /api/services`` one after another from one client and prints the median and p99 latency of
each, per server. Sequential on purpose: it measures the per-request path, not throughput.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from tests.otlp_data import make_request
from tests.server import SpanlakeProcess

TOKEN = "bench-token-0123456789abcdef"
TOKENS = f'[[token]]\nname = "bench"\ntoken = "{TOKEN}"\ntenant = "bench"\nrights = ["ingest", "query"]\n'


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
    body = make_request(1, 10).SerializeToString()
    with tempfile.TemporaryDirectory() as tmp:
        tokens = Path(tmp, "tokens.toml")
        tokens.write_text(TOKENS)
        for label, args, headers in [("no auth", [], {}),
                                     ("tokens", ["--tokens-file", str(tokens)],
                                      {"authorization": f"Bearer {TOKEN}"})]:
            server = SpanlakeProcess(Path(tmp, label.replace(" ", "-")), extra_args=args).start()
            try:
                with httpx.Client(headers=headers) as client:
                    url = f"{server.url('otlp_http')}/v1/traces"
                    ingest = _timed(lambda c=client, u=url: c.post(
                        u, content=body, headers={"content-type": "application/x-protobuf"}), requests)
                    query = f"{server.query_url}/api/services"
                    services = _timed(lambda c=client, q=query: c.get(q), requests)
            finally:
                server.stop()
            print(f"{label:8}  ingest p50 {ingest[0]:.2f} ms p99 {ingest[1]:.2f} ms   "
                  f"/api/services p50 {services[0]:.2f} ms p99 {services[1]:.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    run(parser.parse_args().requests)


if __name__ == "__main__":
    main()
