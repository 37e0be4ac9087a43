"""Where the time of GET /api/traces/{id} goes, stage by stage, in-process (no HTTP, no browser).

    .venv/bin/python -m bench.trace_path                   # 10- and 100,000-span traces
    .venv/bin/python -m bench.trace_path --sizes 10 --repeat 200

Each trace (``bench.ui_render.generate_trace``: the UI benchmark's trace) is written to a fresh store
and flushed to a Parquet segment, then read back ``--repeat`` times through the query path the route
runs: the storage read (``get_traces``), Jaeger's adjusters, the Jaeger JSON model and the JSON
encoding of the response. Prints the median of each stage. Run it under ``py-spy record`` for a
profile (``py-spy record -f raw -o out.txt -- .venv/bin/python -m bench.trace_path``).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.ui_render import generate_trace
from spanlake.collector.formats.otlp_json import decode_otlp_json
from spanlake.query.adjusters import adjust
from spanlake.query.formats.jaeger_json import spans_to_jaeger_traces
from spanlake.query.jaeger_api import encode_json, envelope
from spanlake.storage.store import SegmentStore, StoreConfig

STAGES = ("read", "adjust", "model", "encode")


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    began = time.perf_counter()
    out = fn()
    return (time.perf_counter() - began) * 1000, out


def measure(n_spans: int, repeat: int) -> dict[str, float]:
    """Median milliseconds of each stage for one ``n_spans``-span stored trace."""
    import json

    trace_hex, doc = generate_trace(n_spans, seed=n_spans)
    with tempfile.TemporaryDirectory() as tmp:
        store = SegmentStore(Path(tmp), StoreConfig(flush_interval_s=3600))
        try:
            store.write(decode_otlp_json(json.dumps(doc)).spans)
            store.flush()
            trace_id = bytes.fromhex(trace_hex)
            times: dict[str, list[float]] = {stage: [] for stage in STAGES}
            for _ in range(repeat):
                ms, table = _timed(lambda: store.get_traces([trace_id]))
                times["read"].append(ms)
                ms, table = _timed(lambda t=table: adjust(t))
                times["adjust"].append(ms)
                ms, traces = _timed(lambda t=table: spans_to_jaeger_traces(t))
                times["model"].append(ms)
                ms, _ = _timed(lambda t=traces: encode_json(envelope(t)))
                times["encode"].append(ms)
                if sum(len(t["spans"]) for t in traces) != n_spans:
                    raise RuntimeError(f"read back {len(traces)} traces without all {n_spans} spans")
        finally:
            store.close()
    return {stage: statistics.median(values) for stage, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10,100000", help="comma-separated span counts")
    parser.add_argument("--repeat", type=int, default=0, help="reads per size (default: 200 for small "
                        "traces, 5 for large)")
    args = parser.parse_args()
    print(f"{'spans':>8} " + " ".join(f"{s:>9}" for s in (*STAGES, "total")) + "   (median ms)")
    for n in (int(s) for s in args.sizes.split(",")):
        result = measure(n, args.repeat or (200 if n <= 1000 else 5))
        total = sum(result.values())
        print(f"{n:>8} " + " ".join(f"{result[s]:>9.2f}" for s in STAGES) + f" {total:>9.2f}", flush=True)


if __name__ == "__main__":
    main()
