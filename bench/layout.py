"""Segment layout experiments behind docs/performance.md: what each storage choice costs and buys.

Takes the largest segment of a store (the benchmark leaves one under bench/out), rewrites it with one
choice changed at a time and reports bytes per span and trace-lookup latency (p50 over 40 traces,
pyarrow row-group reads and DuckDB with an equality filter).

Usage: ``python -m bench.layout [bench/out/spanlake/spanlake-data]``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from spanlake.storage.location import local_location
from spanlake.storage.segments import (
    _DELTA_COLUMNS,
    _DICTIONARY_COLUMNS,
    ZSTD_LEVEL,
    list_segment_paths,
    read_segment,
)

LOOKUPS = 40


def column_bytes(path: Path) -> list[tuple[str, float]]:
    """Compressed bytes per span of each Parquet leaf column, largest first."""
    meta = pq.read_metadata(path)
    sizes: Counter[str] = Counter()
    for group in range(meta.num_row_groups):
        for column in range(meta.num_columns):
            chunk = meta.row_group(group).column(column)
            sizes[chunk.path_in_schema] += chunk.total_compressed_size
    return [(name, size / meta.num_rows) for name, size in sizes.most_common()]


def _p50_ms(ids: list[bytes], lookup: Callable[[bytes], Any]) -> float:
    times = []
    for trace_id in ids:
        started = time.perf_counter()
        lookup(trace_id)
        times.append(time.perf_counter() - started)
    return sorted(times)[len(times) // 2] * 1000


def measure(table: pa.Table, path: Path, ids: list[bytes], **write: Any) -> dict[str, float]:
    pq.write_table(table, path, **write)
    meta = pq.read_metadata(path)
    ranges = [(meta.row_group(i).column(0).statistics.min, meta.row_group(i).column(0).statistics.max)
              for i in range(meta.num_row_groups)]

    def by_pyarrow(trace_id: bytes, threads: bool) -> pa.Table:
        groups = [i for i, (lo, hi) in enumerate(ranges) if lo <= trace_id <= hi]
        parquet = pq.ParquetFile(path, metadata=meta, memory_map=True)
        found = parquet.read_row_groups(groups, use_threads=threads)
        return found.filter(pc.equal(found["trace_id"], pa.scalar(trace_id, pa.binary(16))))

    con = duckdb.connect()
    sql = f"SELECT * FROM read_parquet('{path}') WHERE trace_id = $t"
    return {
        "bytes/span": os.path.getsize(path) / table.num_rows,
        "pyarrow 1 thread ms": _p50_ms(ids, lambda t: by_pyarrow(t, False)),
        "pyarrow threads ms": _p50_ms(ids, lambda t: by_pyarrow(t, True)),
        "duckdb ms": _p50_ms(ids, lambda t: con.sql(sql, params={"t": t}).to_arrow_table()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", type=Path, nargs="?", default=Path("bench/out/spanlake/spanlake-data"))
    args = parser.parse_args()
    loc = local_location(args.store)
    source = max(list_segment_paths(loc), key=lambda p: Path(p).stat().st_size)
    print(f"segment {source} ({pq.read_metadata(source).num_rows:,} spans)\n\nbytes per span by column:")
    for name, size in column_bytes(source)[:10]:
        print(f"  {name:45s} {size:6.2f}")
    spans = read_segment(loc, source)
    stored = spans.drop_columns(["end_time_unix_nano"])
    ids = pc.unique(spans.column("trace_id")).to_pylist()[::997][:LOOKUPS]
    base = {"compression": "zstd", "compression_level": ZSTD_LEVEL, "use_dictionary": _DICTIONARY_COLUMNS,
            "column_encoding": _DELTA_COLUMNS}
    variants: list[tuple[str, pa.Table, dict[str, Any]]] = [
        (f"row groups {rows}", stored, {**base, "row_group_size": rows}) for rows in (2048, 4096, 8192, 32768)
    ]
    variants += [
        ("4096, end_time stored", spans, {**base, "row_group_size": 4096,
                                         "use_dictionary": [*_DICTIONARY_COLUMNS, "end_time_unix_nano"]}),
        ("4096, span_id with dictionary", stored, {**base, "row_group_size": 4096, "use_dictionary": True,
                                                  "column_encoding": None}),
        ("4096, start time dictionary", stored, {**base, "row_group_size": 4096, "column_encoding": None,
                                                "use_dictionary": [*_DICTIONARY_COLUMNS, *_DELTA_COLUMNS]}),
        ("4096, zstd level 1", stored, {**base, "row_group_size": 4096, "compression_level": 1}),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        print()
        for name, table, write in variants:
            results = measure(table, Path(tmp) / "segment.parquet", ids, **write)
            print(f"{name:32s} " + "  ".join(f"{k} {v:7.2f}" for k, v in results.items()))


if __name__ == "__main__":
    main()
