"""``make bench-scaling``: how each cost grows with the data (issue 11).

``python -m bench.run --scaling`` runs spanlake alone at 1M, 10M and 100M spans and the ClickHouse peer
at 1M and 10M (``--sizes`` and ``--peer-sizes`` override; ``--sizes 100000,200000 --peer-sizes 100000``
is a smoke test of a few minutes). Each size reuses ``bench.run``'s pieces: ``generate``, then
``peer_clickhouse.run`` and ``spanlake_side.run`` on the same data. A size's generated requests (about
36 GB at 100M spans) and both stores are deleted once it is measured, so only the results stay.

Writes ``<results>/scaling-<UTC time>.{md,json,html}`` after every size (a run that dies at 100M keeps
the smaller sizes) and copies them to ``scaling-latest.*``.

Sizes measured by separate runs (say 1M and 10M one day, 100M alone later) make one table with
``python -m bench.scaling --merge A.json B.json``: their points side by side, each run's command kept.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench import measure, peer_clickhouse, scaling_report, spanlake_side
from bench.generate import SPANS_PER_TRACE, generate
from bench.run import step, write_files

DEFAULT_SIZES = "1000000,10000000,100000000"
DEFAULT_PEER_SIZES = "1000000,10000000"
# Disk one size needs at its peak: the requests file (360 B/span: 36.0 GB at 100M) plus the store
# while compaction writes its output beside its input (~2 x 60 B/span), with room to spare. A size
# that does not fit is skipped and says so, rather than filling a disk other work shares.
DISK_BYTES_PER_SPAN = 500


def parse_sizes(text: str) -> list[int]:
    """``"1000000,10_000_000"`` -> ``[1000000, 10000000]``; every size a positive multiple of a
    trace's span count (the generator writes whole traces)."""
    sizes = sorted({int(part) for part in text.split(",") if part.strip()})
    for size in sizes:
        if size <= 0 or size % SPANS_PER_TRACE:
            raise ValueError(f"a size must be a positive multiple of {SPANS_PER_TRACE} spans, got {size}")
    return sizes


@dataclass
class Point:
    """One size: each engine's numbers (None when that engine was not asked to run at this size)."""

    spans: int
    spanlake: measure.Result | None = None
    peer: measure.Result | None = None
    seconds: dict[str, float] = field(default_factory=dict)  # generate / peer / spanlake wall time
    load_average: str = ""
    disk_free_gib: float = 0.0
    skipped: str = ""  # why this size was not measured, if it was not


@dataclass
class Scaling:
    command: str
    started: str
    machine: dict[str, str]
    sizes: list[int]
    peer_sizes: list[int]
    points: list[Point] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def complete(self) -> bool:
        return [p.spans for p in self.points] == sorted(set(self.sizes) | set(self.peer_sizes))


def timed_step(
    point: Point, name: str, engine: str, call: Callable[[], measure.Result]
) -> measure.Result | None:
    began = time.perf_counter()
    result = step(f"{name} at {point.spans:,} spans", call)
    point.seconds[engine] = round(time.perf_counter() - began, 1)
    return result


def measure_size(spans: int, ours: bool, peer: bool, seed: int, out: Path) -> Point:
    """Generate ``spans``, run the asked engines on it, then delete the data and stores."""
    work = out / f"scaling-{spans}"
    shutil.rmtree(work, ignore_errors=True)
    load = os.getloadavg()
    point = Point(spans=spans, load_average=f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    free = shutil.disk_usage(out).free
    point.disk_free_gib = round(free / (1 << 30), 1)
    if free < spans * DISK_BYTES_PER_SPAN:
        point.skipped = (
            f"not run: {point.disk_free_gib:,.1f} GiB free under {out}, "
            f"needs about {spans * DISK_BYTES_PER_SPAN / (1 << 30):,.0f} GiB"
        )
        print(f"[scaling] {spans:,} spans {point.skipped}", file=sys.stderr, flush=True)
        return point
    try:
        print(f"[scaling] generating {spans:,} spans...", file=sys.stderr, flush=True)
        began = time.perf_counter()
        generate(spans, work / "data", seed)
        point.seconds["generate"] = round(time.perf_counter() - began, 1)
        manifest_path = work / "data" / "manifest.json"
        if peer:
            point.peer = timed_step(
                point, "ClickHouse peer", "peer", lambda: peer_clickhouse.run(manifest_path, work / "peer")
            )
            shutil.rmtree(work / "peer", ignore_errors=True)  # its disk back before spanlake runs
        if ours:
            point.spanlake = timed_step(
                point, "spanlake", "spanlake", lambda: spanlake_side.run(manifest_path, work / "spanlake")
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return point


def run(scaling: Scaling, seed: int, out: Path, results: Path) -> None:
    """Every size, smallest first, writing the results after each one."""
    began = time.perf_counter()
    stem = "scaling-" + time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out.mkdir(parents=True, exist_ok=True)
    for spans in sorted(set(scaling.sizes) | set(scaling.peer_sizes)):
        point = measure_size(spans, spans in scaling.sizes, spans in scaling.peer_sizes, seed, out)
        scaling.points.append(point)
        scaling.seconds = time.perf_counter() - began
        write(scaling, results, stem)


def write(scaling: Scaling, results: Path, stem: str) -> None:
    write_files(results, stem, "scaling-latest", scaling_report.markdown(scaling), scaling,
                lambda path: scaling_report.chart(scaling, path))
    done = f"{results / stem}.md/.json/.html ({scaling.seconds:.0f} s so far)"
    print(f"[scaling] wrote {done}", file=sys.stderr)


def load(path: Path) -> Scaling:
    """A ``scaling-*.json`` back as the ``Scaling`` that wrote it."""
    raw = json.loads(path.read_text())

    def result(data: dict[str, object] | None) -> measure.Result | None:
        return None if data is None else measure.Result(**data)  # type: ignore[arg-type]

    points = [Point(**(p | {"spanlake": result(p["spanlake"]), "peer": result(p["peer"])}))
              for p in raw.pop("points")]
    return Scaling(**raw, points=points)


def merge(runs: list[Scaling]) -> Scaling:
    """One table from runs of different sizes; a size measured twice keeps the later run's point."""
    points = {p.spans: p for run in runs for p in run.points}
    return Scaling(
        command=" ; then ".join(run.command for run in runs),
        started=runs[0].started,
        machine=runs[0].machine,
        sizes=sorted({s for run in runs for s in run.sizes}),
        peer_sizes=sorted({s for run in runs for s in run.peer_sizes}),
        points=[points[s] for s in sorted(points)],
        seconds=sum(run.seconds for run in runs),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="merge scaling runs of different sizes into one table")
    parser.add_argument("--merge", type=Path, nargs="+", required=True, help="scaling-*.json, oldest first")
    parser.add_argument("--results", type=Path, default=Path("bench/results"))
    args = parser.parse_args()
    merged = merge([load(path) for path in args.merge])
    write(merged, args.results, "scaling-" + time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))


if __name__ == "__main__":
    main()
