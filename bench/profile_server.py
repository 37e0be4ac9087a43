"""Where ``spanlake serve`` spends its time: py-spy on the server during ingest or one search.

Usage: ``python -m bench.profile_server bench/out/data/manifest.json`` (after ``bench.run`` or
``bench.generate``) profiles ingest; ``--search no_match`` (any key of ``measure.SEARCHES``) profiles
ten runs of that search on the store ``bench.run`` left in ``bench/out/spanlake``. Writes py-spy's
collapsed stacks (``*.pyspy.txt``: open them in speedscope or feed them to flamegraph.pl) under
``--work-dir`` and prints the functions with the most samples, by own and by inclusive time. Kept
apart from ``bench.run``: the sampler costs CPU and would distort the measured run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

from bench import measure, spanlake_side
from bench.generate import Manifest


def function_of(frame: str) -> str:
    """``name (path/to/file.py:123)`` -> ``name (file.py)``: samples add up per function, not per line."""
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rsplit('/', 1)[-1].split(':')[0].rstrip(')')})" if where else name


def summarize(collapsed: Path, top: int = 25) -> str:
    """Own and inclusive sample shares per function from py-spy's raw (collapsed) output."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [function_of(frame) for frame in stack.split(";")]
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    lines = [f"{total} samples"]
    for title, counter in (("own time", own), ("inclusive time", inclusive)):
        lines.append(f"-- top {top} by {title}")
        lines += [f"{100 * n / total:5.1f}%  {frame}" for frame, n in counter.most_common(top)]
    return "\n".join(lines)


def record(pid: int, out: Path) -> subprocess.Popen[bytes]:
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    command = [py_spy, "record", "-p", str(pid), "-r", "97", "--nonblocking", "-f", "raw", "-o", str(out)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def finish(sampler: subprocess.Popen[bytes]) -> None:
    sampler.send_signal(signal.SIGINT)
    sampler.wait(timeout=60)


def profile_ingest(manifest_path: Path, work_dir: Path) -> str:
    manifest = Manifest.load(manifest_path)
    data_dir = work_dir / "spanlake-data"
    shutil.rmtree(data_dir, ignore_errors=True)
    work_dir.mkdir(parents=True, exist_ok=True)
    server = spanlake_side.Server(data_dir, work_dir / "spanlake-serve.log")
    raw = work_dir / "ingest.pyspy.txt"
    try:
        sampler = record(server.proc.pid, raw)
        command = [sys.executable, "-m", "bench.spanlake_side", "load", f"127.0.0.1:{server.grpc_port}",
                   manifest.requests_file]  # fmt: skip
        stats = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
        spanlake_side.wait_idle(server.proc.pid)
        finish(sampler)
    finally:
        problem = server.stop()
    return f"load: {stats}\n{problem or ''}\n" + summarize(raw)


def profile_search(manifest_path: Path, data_dir: Path, work_dir: Path, key: str) -> str:
    manifest = Manifest.load(manifest_path)
    work_dir.mkdir(parents=True, exist_ok=True)
    server = spanlake_side.Server(data_dir, work_dir / "spanlake-serve.log")
    raw = work_dir / f"search-{key}.pyspy.txt"
    try:
        if key == "by_id":
            ids = manifest.existing_trace_ids

            def call() -> None:
                for trace_id in ids:
                    spanlake_side.by_id(server, trace_id)
        else:
            call = spanlake_side.search_calls(server, manifest)[key]  # type: ignore[assignment]
        call()  # the first run opens segment metadata; profile the steady state
        sampler = record(server.proc.pid, raw)
        times, _ = measure.timed(call, measure.SEARCH_RUNS)
        finish(sampler)
    finally:
        problem = server.stop()
    return f"{key}: p50 {measure.ms_percentile(times, 50):.0f} ms\n{problem or ''}\n" + summarize(raw)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifest", type=Path)
    parser.add_argument("--work-dir", type=Path, default=Path("bench/out/profile"))
    parser.add_argument("--search", choices=["by_id", *(key for key, _ in measure.SEARCHES)],
                        help="by_id: the 100 existing trace IDs, ten times over")  # fmt: skip
    parser.add_argument("--data-dir", type=Path, default=Path("bench/out/spanlake/spanlake-data"))
    args = parser.parse_args()
    if args.search:
        print(profile_search(args.manifest, args.data_dir, args.work_dir, args.search))
    else:
        print(profile_ingest(args.manifest, args.work_dir))


if __name__ == "__main__":
    main()
