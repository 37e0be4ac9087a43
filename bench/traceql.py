"""TraceQL latency, in process: the issue's five TraceQL rows over the generated data set.

Usage: ``python -m bench.traceql --spans 1000000 [--repeat 5] [--out bench/out-traceql]``. Generates the
benchmark data (``bench.generate``), stores it in a fresh segment store (flushed: everything in
segments), then times each query through the TraceQL engine directly (no HTTP) and prints p50 / max.
Not part of ``make bench`` yet, and not compared with the ClickHouse peer.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from bench import wire
from bench.generate import generate
from spanlake.collector.formats.otlp import decode_otlp_protobuf
from spanlake.query.traceql.parser import parse
from spanlake.storage.store import SegmentStore, StoreConfig
from spanlake.storage.traceql.engine import TraceQLEngine
from spanlake.storage.traceql.metrics import query_range


def load(requests_file: Path, data_dir: Path) -> SegmentStore:
    store = SegmentStore(data_dir, StoreConfig(flush_interval_s=3600, segment_max_spans=500_000,
                                               max_buffered_spans=2_000_000))
    for payload, _ in wire.read_records(requests_file):
        store.write(decode_otlp_protobuf(payload).spans)
        if store._tail_spans >= 400_000:  # keep memory bounded on big runs
            store.flush()
    store.flush()
    return store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=int(os.environ.get("BENCH_SPANS", 1_000_000)))
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("bench/out-traceql"))
    args = parser.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    manifest = generate(args.spans, args.out)
    began = time.perf_counter()
    store = load(Path(manifest.requests_file), args.out / "data")
    print(f"{manifest.spans} spans stored in {time.perf_counter() - began:.1f} s; load {os.getloadavg()}")
    engine = TraceQLEngine(store.reader)
    s = manifest.searches
    lo, hi = manifest.start_ns, manifest.end_ns
    searches = {
        "service and name": f'{{ resource.service.name = "{s.service}" && name = "{s.operation}" }}',
        "one attribute, all services": f'{{ span.{s.attr_key} = "{s.attr_value}" }}',
        "duration > 1s": "{ duration > 1s }",
        "structural": f'{{ resource.service.name = "{s.service}" }} >> {{ status = error }}',
    }
    calls: dict[str, Callable[[], int]] = {
        name: (lambda q=q: len(engine.search(parse(q), lo, hi, 20))) for name, q in searches.items()
    }
    rate = parse("{ } | rate() by (resource.service.name)")
    calls["rate by service, 1 h"] = lambda: len(query_range(engine, rate, lo, hi, 60 * 10**9))
    print("| query | results | p50 ms | max ms |\n|---|---|---|---|")
    for name, call in calls.items():
        times, found = [], 0
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            found = call()
            times.append((time.perf_counter() - t0) * 1000)
        print(f"| {name} | {found} | {statistics.median(times):.0f} | {max(times):.0f} |")
    store.close()


if __name__ == "__main__":
    main()
