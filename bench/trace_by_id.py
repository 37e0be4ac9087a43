"""Trace-by-ID latency alone: GET /api/traces/{id} of the benchmark's 10-span traces, many times.

    .venv/bin/python -m bench.run --spans 1000000 --skip-peer     # once: leaves the store in bench/out
    .venv/bin/python -m bench.trace_by_id                          # 200 GETs, p50/p99 and server CPU

Starts a query-only ``spanlake serve`` on the store ``bench.run`` left (no ingest, no compaction
competing), warms it with one pass over the IDs, then times ``--requests`` GETs cycling through the
manifest's existing trace IDs over one kept-alive connection (as the UI and Grafana do). Reports the
client-side p50/p99 and the server's CPU per request, so a change to the query path can be measured in
a minute instead of a full ``bench.run``.
"""

from __future__ import annotations

import argparse
import http.client
import time
from pathlib import Path

from bench import measure
from bench.generate import Manifest
from bench.spanlake_side import Server


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in clock ticks of 1/100 s


def run(manifest: Manifest, data_dir: Path, requests: int) -> dict[str, float]:
    log = data_dir.parent / "trace_by_id.log"
    server = Server(data_dir, log, extra_args=("--roles", "query"))
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.query_port, timeout=60)
        ids = manifest.existing_trace_ids

        def get(trace_id: str) -> None:
            conn.request("GET", f"/api/traces/{trace_id}")
            response = conn.getresponse()
            body = response.read()
            if response.status != 200 or b'"spans"' not in body:
                raise RuntimeError(f"GET /api/traces/{trace_id}: HTTP {response.status}")

        for trace_id in ids:  # warm: footers, Bloom filters and the page cache, as a running server has
            get(trace_id)
        cpu_before = cpu_seconds(server.proc.pid)
        times = []
        for k in range(requests):
            began = time.perf_counter()
            get(ids[k % len(ids)])
            times.append(time.perf_counter() - began)
        cpu = cpu_seconds(server.proc.pid) - cpu_before
        return {"p50_ms": measure.ms_percentile(times, 50), "p99_ms": measure.ms_percentile(times, 99),
                "server_cpu_ms_per_request": 1000 * cpu / requests}
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("bench/out"), help="where bench.run left its store")
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    manifest = Manifest.load(args.out / "data" / "manifest.json")
    result = run(manifest, args.out / "spanlake" / "spanlake-data", args.requests)
    print(f"trace by ID, {len(manifest.existing_trace_ids)} IDs x {args.requests} GETs on "
          f"{manifest.spans:,} spans: p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms, "
          f"server CPU {result['server_cpu_ms_per_request']:.2f} ms/request")


if __name__ == "__main__":
    main()
