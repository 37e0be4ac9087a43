"""What a segment's Parquet footer costs a reader: bytes on disk, memory once parsed, time to parse.

    .venv/bin/python -m bench.run --spans 1000000 --skip-peer     # once: leaves the store in bench/out
    .venv/bin/python -m bench.footers                              # the largest segment's footer

The reason ``storage/footers.py`` keeps parsed footers for recently read segments only: their memory
follows the number of column chunks (row groups x leaf columns), not the bytes on disk.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import pyarrow.parquet as pq


def rss_mib() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096 / (1 << 20)


def measure(path: Path, copies: int = 100) -> dict[str, float]:
    metadata = pq.read_metadata(path)
    times = []
    for _ in range(20):
        began = time.perf_counter()
        pq.read_metadata(path)
        times.append((time.perf_counter() - began) * 1000)
    before = rss_mib()
    kept = [pq.read_metadata(path) for _ in range(copies)]
    parsed_mib = (rss_mib() - before) / len(kept)
    return {
        "row_groups": metadata.num_row_groups,
        "column_chunks": metadata.num_row_groups * metadata.num_columns,
        "footer_bytes": metadata.serialized_size,
        "parsed_mib": parsed_mib,
        "parse_ms": statistics.median(times),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=Path("bench/out/spanlake/spanlake-data"))
    args = parser.parse_args()
    segments = sorted((args.data_dir / "spans").rglob("*.parquet"), key=lambda p: p.stat().st_size)
    if not segments:
        raise SystemExit(f"no segments under {args.data_dir}/spans: run bench.run first")
    largest = segments[-1]
    spans = pq.read_metadata(largest).num_rows
    r = measure(largest)
    per_chunk = (1 << 20) * r["parsed_mib"] / r["column_chunks"]
    print(f"{largest.name}: {spans:,} spans, {r['row_groups']} row groups, "
          f"{r['column_chunks']:,} column chunks; footer {r['footer_bytes']:,} B on disk, "
          f"{r['parsed_mib']:.2f} MiB parsed ({per_chunk:,.0f} B per chunk), "
          f"parse p50 {r['parse_ms']:.2f} ms")


if __name__ == "__main__":
    main()
