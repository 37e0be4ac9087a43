"""``make bench``: generate the data, run spanlake and the ClickHouse peer on it, write the comparison.

Usage: ``python -m bench.run --spans 1000000`` (``BENCH_SPANS=10000000`` for the full run). Writes
``bench/results/<UTC time>-<spans>.{md,html,json}`` and copies them to ``latest.*``.
``python -m bench.run --scaling [--sizes ...] [--peer-sizes ...]``: how each cost grows (see
``bench/scaling.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench import measure, peer_clickhouse, report, spanlake_side, wire
from bench.generate import Manifest, generate


def parse_floor(requests_file: Path) -> float:
    """CPU seconds per million spans to merely parse the requests (``ExportTraceServiceRequest``)."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    spans, cpu = 0, 0.0
    for payload, count in wire.read_records(requests_file):
        began = time.process_time()
        ExportTraceServiceRequest.FromString(payload)
        cpu += time.process_time() - began
        spans += count
    return cpu / spans * 1e6 if spans else float("nan")


def machine() -> dict[str, str]:
    model = "unknown"
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = os.getloadavg()
    return {
        "cores": str(os.cpu_count()),
        "cpu": model,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "load average at start": f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
    }


@dataclass
class Run:
    command: str
    started: str
    machine: dict[str, str]
    manifest: dict[str, object]
    floor_cpu_s_per_m: float
    spanlake: measure.Result | None
    peer: measure.Result | None
    seconds: float = 0.0


def step(name: str, call: Callable[[], measure.Result]) -> measure.Result | None:
    print(f"[bench] {name}...", file=sys.stderr, flush=True)
    began = time.perf_counter()
    try:
        result = call()
    except Exception as exc:  # a failed side is reported as not measured, the other still runs
        print(f"[bench] {name} failed: {exc!r}", file=sys.stderr, flush=True)
        return measure.Result(engine=name, version="failed", notes=[f"{name} failed: {exc!r}"[:500]])
    print(f"[bench] {name} done in {time.perf_counter() - began:.0f} s", file=sys.stderr, flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=int(os.environ.get("BENCH_SPANS", 1_000_000)))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=Path("bench/out"), help="scratch (git-ignored)")
    parser.add_argument("--results", type=Path, default=Path("bench/results"))
    parser.add_argument("--skip-peer", action="store_true")
    parser.add_argument("--skip-spanlake", action="store_true")
    parser.add_argument("--scaling", action="store_true", help="how cost grows: see bench/scaling.py")
    parser.add_argument("--sizes", help="--scaling: spanlake's sizes, comma-separated (default 1M,10M,100M)")
    parser.add_argument("--peer-sizes", help="--scaling: the peer's sizes (default 1M,10M; empty: none)")
    args = parser.parse_args()
    if args.scaling:
        scaling_main(args)
        return
    if args.sizes is not None or args.peer_sizes is not None:
        parser.error("--sizes and --peer-sizes go with --scaling")
    began = time.perf_counter()
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    host = machine()
    print(f"[bench] generating {args.spans} spans...", file=sys.stderr, flush=True)
    manifest = generate(args.spans, args.out / "data", args.seed)
    manifest_path = args.out / "data" / "manifest.json"
    floor = parse_floor(Path(manifest.requests_file))
    peer = None
    if not args.skip_peer:
        shutil.rmtree(args.out / "peer", ignore_errors=True)
        peer = step("ClickHouse peer", lambda: peer_clickhouse.run(manifest_path, args.out / "peer"))
    ours = None
    if not args.skip_spanlake:
        ours = step("spanlake", lambda: spanlake_side.run(manifest_path, args.out / "spanlake"))
    load = os.getloadavg()
    host["load average at end"] = f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    run = Run(
        command="python -m bench.run " + shlex.join(sys.argv[1:]),
        started=started,
        machine=host,
        manifest=summary(manifest),
        floor_cpu_s_per_m=floor,
        spanlake=ours,
        peer=peer,
        seconds=time.perf_counter() - began,
    )
    write(run, args.results, args.spans)


def scaling_main(args: argparse.Namespace) -> None:
    from bench import scaling  # imports this module: only loaded for --scaling

    try:
        sizes = scaling.parse_sizes(scaling.DEFAULT_SIZES if args.sizes is None else args.sizes)
        peer_sizes = scaling.parse_sizes(
            scaling.DEFAULT_PEER_SIZES if args.peer_sizes is None else args.peer_sizes
        )
    except ValueError as exc:
        sys.exit(f"bench.run: {exc}")
    run = scaling.Scaling(
        command="python -m bench.run " + shlex.join(sys.argv[1:]),
        started=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        machine=machine(),
        sizes=sizes,
        peer_sizes=peer_sizes,
    )
    scaling.run(run, args.seed, args.out, args.results)


def summary(manifest: Manifest) -> dict[str, object]:
    raw = asdict(manifest)
    for key in ("existing_trace_ids", "absent_trace_ids", "requests_file"):
        raw.pop(key)
    return raw


def write(run: Run, results: Path, spans: int) -> None:
    stem = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + f"-{spans}"
    write_files(results, stem, "latest", report.markdown(run), run, lambda path: report.chart(run, path))
    print(f"[bench] wrote {results / stem}.md/.json/.html in {run.seconds:.0f} s", file=sys.stderr)


def write_files(results: Path, stem: str, latest: str, markdown: str, data: Any,
                chart: Callable[[Path], None]) -> None:
    """``<stem>.md``, ``.json`` (``data``, a dataclass) and ``.html`` (``chart``) under ``results``,
    each copied to ``<latest>.*``; the Markdown is printed too."""
    results.mkdir(parents=True, exist_ok=True)
    (results / f"{stem}.md").write_text(markdown)
    (results / f"{stem}.json").write_text(json.dumps(asdict(data), indent=2, default=str))
    chart(results / f"{stem}.html")
    for suffix in ("md", "json", "html"):
        shutil.copyfile(results / f"{stem}.{suffix}", results / f"{latest}.{suffix}")
    print(markdown)


if __name__ == "__main__":
    main()
