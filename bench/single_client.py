"""One OTLP gRPC client pushing batches of 1,000 spans into ``spanlake serve``: spans/s and bytes/span.

The foundation issue's two numbers, without the ClickHouse comparison. The client is a separate
process on one stream (``spanlake_side load --streams 1``), so only acknowledged spans count.

Usage: ``python -m bench.single_client [--spans 200000]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import procstat
from bench.generate import generate
from bench.spanlake_side import Server, compact, segment_bytes, wait_idle


def measure(spans: int, work: Path) -> dict[str, float]:
    manifest = generate(spans, work / "data")
    server = Server(work / "store", work / "serve.log")
    monitor = procstat.Monitor(server.proc.pid).start()
    monitor.phase("ingest")
    cpu_before = procstat.cpu_seconds(server.proc.pid)
    load = subprocess.run(
        [sys.executable, "-m", "bench.spanlake_side", "load", f"127.0.0.1:{server.grpc_port}",
         str(manifest.requests_file), "--streams", "1"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    result = json.loads(load.stdout.strip().splitlines()[-1])
    wait_idle(server.proc.pid)
    cpu = procstat.cpu_seconds(server.proc.pid) - cpu_before
    peak_rss = monitor.stop()["ingest"].peak_rss
    server.stop()
    notes: list[str] = []
    compact(work / "store", notes)
    acked = result["acked"]
    return {
        "spans_acked": acked,
        "client_wall_s": result["wall_s"],
        "spans_per_s": acked / result["wall_s"],
        "server_cpu_s": cpu,
        "spans_per_server_cpu_s": acked / cpu,
        "bytes_per_span_after_compaction": segment_bytes(work / "store") / acked,
        "peak_server_rss_mib_during_ingest": peak_rss / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=200_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="spanlake-single-") as tmp:
        for key, value in measure(args.spans, Path(tmp)).items():
            print(f"{key}: {value:,.1f}")


if __name__ == "__main__":
    main()
