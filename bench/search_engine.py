"""The Jaeger searches of the benchmark, in this process: what a search costs without HTTP.

Runs the benchmark's attribute, no-match, slower-than-p99 and service+operation searches (the same
``TraceQuery`` the Jaeger API builds from ``bench.spanlake_side``'s parameters) through
``Reader.find_trace_ids`` on a store that ``bench.run`` left under bench/out, and prints the median
and fastest wall time of each and how many traces it found. Run it with two checkouts' venvs on the
same store to compare two versions of the read path back to back.

Usage: ``python -m bench.search_engine [--data-dir bench/out/spanlake/spanlake-data] [--runs 5]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from bench.generate import Manifest
from spanlake.storage.api import TraceQuery
from spanlake.storage.store import SegmentStore


def searches(manifest: Manifest) -> dict[str, TraceQuery]:
    q, lo, hi = manifest.searches, manifest.start_ns, manifest.end_ns + 1

    def search(start_ns: int = lo, **terms: Any) -> TraceQuery:
        return TraceQuery(start_time_min_ns=start_ns, start_time_max_ns=hi, search_depth=20, **terms)

    return {
        "attribute": search(attributes={q.attr_key: q.attr_value}),
        "no_match": search(service_name=q.nomatch_service, attributes={q.nomatch_key: q.nomatch_value}),
        "slow": search(service_name=q.slow_service, duration_min_ns=q.slow_threshold_ns + 1),
        "service_operation": search(q.recent_start_ns, service_name=q.service, operation_name=q.operation),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("bench/out/spanlake/spanlake-data"))
    parser.add_argument("--manifest", type=Path, default=Path("bench/out/data/manifest.json"))
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    store = SegmentStore(args.data_dir, writable=False)
    try:
        for name, query in searches(Manifest.load(args.manifest)).items():
            times, found = [], 0
            for _ in range(args.runs):
                began = time.perf_counter()
                found = len(store.reader.find_trace_ids(query))
                times.append((time.perf_counter() - began) * 1000)
            print(json.dumps({"search": name, "median_ms": round(statistics.median(times), 1),
                              "fastest_ms": round(min(times), 1), "traces": found}))
    finally:
        store.close()


if __name__ == "__main__":
    main()
