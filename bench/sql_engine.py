"""The SQL engine alone, in this process: what a query costs without HTTP, on the benchmark's store.

Runs the benchmark's p50/p99-per-operation query (``PERCENTILES_SQL``, the "(SQL)" line of
``bench.run``), a count over the hour and ``SELECT 1`` (the fixed cost of a query: snapshot, opening
its database, views) through ``SqlEngine.execute`` on a store that ``bench.run`` left under
bench/out, and prints the median and fastest wall time of each. Interleaved runs, so that a load
change on the machine hits every query alike.

Usage: ``python -m bench.sql_engine [--data-dir bench/out/spanlake/spanlake-data] [--runs 15] [--explain]``;
``--explain`` also prints DuckDB's ``EXPLAIN ANALYZE`` of the percentiles query through the engine's own
views (time per operator: the Parquet scan, the grouping).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from bench.generate import Manifest
from bench.spanlake_side import PERCENTILES_SQL
from spanlake.storage.sql import SqlEngine
from spanlake.storage.store import SegmentStore


def queries(manifest: Manifest) -> dict[str, str]:
    lo, hi = manifest.start_ns, manifest.end_ns
    window = f"start_time_unix_nano BETWEEN {lo} AND {hi}"
    return {
        "p50/p99 per service+operation, 1 h": PERCENTILES_SQL.format(lo=lo, hi=hi),
        "count(*) over 1 h": f"SELECT count(*) FROM spans WHERE {window}",
        "SELECT 1": "SELECT 1",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("bench/out/spanlake/spanlake-data"))
    parser.add_argument("--manifest", type=Path, default=Path("bench/out/data/manifest.json"))
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE of the percentiles")
    args = parser.parse_args()
    manifest = Manifest.load(args.manifest)
    store = SegmentStore(args.data_dir, writable=False)
    engine = SqlEngine(store.snapshot, timeout_s=120, max_rows=100_000)
    todo = queries(manifest)
    times: dict[str, list[float]] = {name: [] for name in todo}
    rows: dict[str, int] = {}
    try:
        for name, query in todo.items():  # warm-up: the page cache holds the files for every run
            rows[name] = engine.execute(query).table.num_rows
        for _ in range(args.runs):
            for name, query in todo.items():
                began = time.perf_counter()
                engine.execute(query)
                times[name].append((time.perf_counter() - began) * 1000)
        if args.explain:  # the engine refuses EXPLAIN from users: ask one of its cursors directly
            cursor = engine._connection()
            print(cursor.execute("EXPLAIN ANALYZE " + next(iter(todo.values()))).fetchall()[0][1])
            cursor.close()
    finally:
        engine.close()
    print(f"{len(store.snapshot().segments)} segments, {manifest.spans:,} spans, {args.runs} runs each")
    for name, ms in times.items():
        print(f"{name}: p50 {statistics.median(ms):,.1f} ms, min {min(ms):,.1f} ms ({rows[name]} rows)")


if __name__ == "__main__":
    main()
