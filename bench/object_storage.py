"""The object-storage run: two collectors upload into a real SeaweedFS, a query node that ingested
nothing answers.

Usage: ``python -m bench.object_storage --spans 1000000`` (the issue's size). Measures:

- ingest: spans per collector CPU-second (both collectors' CPU from /proc, until idle after the last
  ack, so the uploads are counted);
- trace by ID through the query-only node, cold (first lookup of each ID after the node started, so
  sidecars and footers come from the bucket) and warm (the same IDs again), p50 and p99;
- the service+operation and attribute searches (and the others of ``bench.spanlake_side``), p50;
- object-store requests per query, from SeaweedFS's own Prometheus counters (``-metricsPort``).

The same run then repeats on a local directory (``--storage`` a path: the same two collectors and
query node, no SeaweedFS), so each line has its local-disk counterpart and their ratio: the issue
asks searches within 2x and ingest within 15% of local disk.

Writes ``<out>/object-storage.json`` and ``.md`` (``make bench-object-storage``). The numbers
depend on the machine and on what else runs on it: quote them only with the machine line the
report carries.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import measure, procstat, wire
from bench.generate import Manifest, generate
from bench.spanlake_side import LOAD_STREAMS, Server, by_id, free_port, search_calls, wait_idle
from tests.seaweedfs import SeaweedFS

_REQUESTS = re.compile(r"^SeaweedFS_s3_request_total\{[^}]*\}\s+([0-9.e+]+)$", re.M)


def split_requests(source: Path, out_dir: Path, parts: int) -> list[Path]:
    """Deal the requests of ``source`` round-robin into ``parts`` files, one per collector."""
    paths = [out_dir / f"requests-{i}.bin" for i in range(parts)]
    handles = [p.open("wb") for p in paths]
    for n, (payload, spans) in enumerate(wire.read_records(source)):
        wire.write_record(handles[n % parts], payload, spans)
    for h in handles:
        h.close()
    return paths


def s3_requests(metrics_port: int) -> float:
    """Requests the S3 gateway has served so far."""
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    return sum(float(v) for v in _REQUESTS.findall(text))


def ingest(collectors: list[Server], request_files: list[Path]) -> dict[str, Any]:
    monitors = [procstat.Monitor(c.proc.pid).start() for c in collectors]
    for m in monitors:
        m.phase("ingest")
    loads = [subprocess.Popen([sys.executable, "-m", "bench.spanlake_side", "load",
                               f"127.0.0.1:{c.grpc_port}", str(f), "--streams", str(LOAD_STREAMS)],
                              stdout=subprocess.PIPE, text=True)
             for c, f in zip(collectors, request_files, strict=True)]
    stats = [json.loads(p.communicate()[0]) for p in loads]
    for c in collectors:
        wait_idle(c.proc.pid)
    phases = [m.stop()["ingest"] for m in monitors]
    acked = sum(s["acked"] for s in stats)
    cpu = [p.cpu for p in phases]
    return {"acked": acked, "collector_cpu_s": cpu,
            "spans_per_collector_cpu_s": [s["acked"] / c for s, c in zip(stats, cpu, strict=True)],
            "wall_s": max(s["wall_s"] for s in stats)}


def queries(node: Server, manifest: Manifest, requests: Callable[[], float]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    ids = manifest.existing_trace_ids
    for label in ("cold", "warm"):  # the first pass loads sidecars and footers from the bucket
        times: list[float] = []
        before = requests()
        for trace_id in ids:
            times += measure.timed(functools.partial(by_id, node, trace_id), 1)[0]
        out[f"by_id_{label}_p50_ms"] = measure.ms_percentile(times, 50)
        out[f"by_id_{label}_p99_ms"] = measure.ms_percentile(times, 99)
        out[f"by_id_{label}_requests"] = (requests() - before) / len(ids)
    for name, call in search_calls(node, manifest).items():
        before = requests()
        times, _ = measure.timed(call, measure.SEARCH_RUNS)
        out[f"{name}_p50_ms"] = measure.ms_percentile(times, 50)
        out[f"{name}_requests"] = (requests() - before) / measure.SEARCH_RUNS
    return out


def run_roles(out_dir: Path, storage: str, env: dict[str, str], manifest: Manifest, files: list[Path],
              requests: Callable[[], float]) -> dict[str, Any]:
    """Two collectors ingest into ``storage``, then a query node that ingested nothing answers."""
    out_dir.mkdir(parents=True, exist_ok=True)
    log = out_dir / "spanlake.log"
    roles = ("--storage", storage)
    collectors = [Server(out_dir / f"collector-{i}", log, (*roles, "--roles", "collector,query"), env)
                  for i in range(2)]
    result = ingest(collectors, files)
    for c in collectors:
        c.stop()
    node = Server(out_dir / "query", log, (*roles, "--roles", "query"), env)
    try:
        result.update(queries(node, manifest, requests))
    finally:
        node.stop()
    return result


def report(result: dict[str, Any]) -> str:
    lines = ["# spanlake on object storage (SeaweedFS) and on local disk", "",
             f"Command: `{result['command']}`", "", f"Machine: {result['machine']}", "",
             "| measure | object storage | local disk | ratio |", "|---|---:|---:|---:|"]
    s3, local = result["object_storage"], result["local_disk"]
    for key, value in s3.items():
        other = local.get(key)
        numbers = isinstance(value, float) and isinstance(other, float) and other
        ratio = f"{value / other:.2f}" if numbers else "-"
        lines.append(f"| {key} | {_show(value)} | {_show(other)} | {ratio} |")
    return "\n".join(lines) + "\n"


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, list):
        return ", ".join(_show(v) for v in value)
    return str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=Path("bench/out/object-storage"),
                        help="scratch (git-ignored): data, SeaweedFS, logs, and the report")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    manifest = generate(args.spans, args.out / "data", args.seed)
    files = split_requests(Path(manifest.requests_file), args.out, 2)
    metrics_port = free_port()
    result: dict[str, Any] = {"command": " ".join(["python -m bench.object_storage", *sys.argv[1:]]),
                              "machine": f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f} at start"}
    store = SeaweedFS(args.out / "seaweedfs", extra_args=[f"-metricsPort={metrics_port}"]).start()
    try:
        result["object_storage"] = run_roles(args.out / "s3", f"s3://bench/run-{int(time.time())}",
                                             store.env, manifest, files, lambda: s3_requests(metrics_port))
    finally:
        store.stop()
    local = args.out / "local" / "store"
    shutil.rmtree(local, ignore_errors=True)
    result["local_disk"] = run_roles(args.out / "local", str(local), {}, manifest, files, lambda: 0.0)
    result["machine"] += f", load {os.getloadavg()[0]:.2f} at end"
    (args.out / "object-storage.json").write_text(json.dumps(result, indent=2))
    (args.out / "object-storage.md").write_text(report(result))
    print(report(result))


if __name__ == "__main__":
    main()
