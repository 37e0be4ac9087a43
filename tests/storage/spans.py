"""Span tables for storage tests: built in code (vectorised for big traces) and compared."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from spanlake.storage.attributes import attrs
from spanlake.storage.rows import spans_table
from spanlake.storage.schema import SPAN_KIND_BY_NAME, SPAN_SCHEMA

NS_PER_DAY = 86_400 * 10**9

BASE_NS = (int(time.time()) // 3600 - 24) * 3600 * 10**9  # a whole hour, a day ago: inside any window


def tid(n: int) -> bytes:
    return n.to_bytes(16, "big")


def sid(n: int) -> bytes:
    return n.to_bytes(8, "big")


def span(trace: int, span_id: int, service: str, name: str = "op", *, parent: int | None = None,
         start: int = BASE_NS, duration: int = 1000, **extra: Any) -> dict[str, Any]:
    """One span row for ``spans_table``; ``extra`` sets any other column."""
    return {"trace_id": tid(trace), "span_id": sid(span_id),
            "parent_span_id": None if parent is None else sid(parent), "name": name,
            "start_time_unix_nano": start, "end_time_unix_nano": start + duration,
            "resource_attributes": attrs({"service.name": service}), **extra}


def big_trace(trace_id: bytes, span_ids: np.ndarray, start_ns: int) -> pa.Table:
    """A trace with one span per entry of ``span_ids`` (uint64), built column-wise: one template row
    repeated, then the columns that differ replaced by vectorised arrays."""
    n = len(span_ids)
    template = spans_table([{
        "trace_id": trace_id, "span_id": sid(1), "name": "big-op", "kind": SPAN_KIND_BY_NAME["server"],
        "start_time_unix_nano": 0, "end_time_unix_nano": 0,
        "resource_attributes": attrs({"service.name": "big-service", "host.name": "h1"}),
        "span_attributes": attrs({"http.method": "GET", "retry": 3}),
    }])
    table = template.take(pa.array(np.zeros(n, dtype=np.int64)))
    starts = start_ns + np.arange(n, dtype=np.int64) * 1000
    durations = 500 + np.arange(n, dtype=np.int64) % 7
    columns = {
        "span_id": _ids(span_ids),
        "parent_span_id": _ids(np.full(n, span_ids[0], dtype=np.uint64), root_is_null=True),
        "start_time_unix_nano": pa.array(starts),
        "end_time_unix_nano": pa.array(starts + durations),
        "duration_nano": pa.array(durations),
    }
    for name, column in columns.items():
        table = table.set_column(table.schema.get_field_index(name), SPAN_SCHEMA.field(name), column)
    return table


def _ids(values: np.ndarray, root_is_null: bool = False) -> pa.Array:
    """uint64 span IDs as big-endian 8-byte binaries, without a Python loop; optionally the first
    one null (a root span has no parent)."""
    valid = np.ones(len(values), dtype=bool)
    valid[0] = not root_is_null
    validity = pa.py_buffer(np.packbits(valid, bitorder="little").tobytes())
    data = pa.py_buffer(values.astype(">u8").tobytes())
    return pa.Array.from_buffers(pa.binary(8), len(values), [validity, data])



def canonical(table: pa.Table) -> list[dict[str, Any]]:
    """Rows in a fixed order: backends return spans in any order, and may split or merge batches."""
    return sorted(table.select(SPAN_SCHEMA.names).to_pylist(), key=repr)


_SORT_KEYS = [(name, "ascending") for name in
              ("trace_id", "span_id", "start_time_unix_nano", "end_time_unix_nano", "name")]


def assert_same_spans(actual: pa.Table, expected: pa.Table) -> None:
    assert actual.num_rows == expected.num_rows, f"{actual.num_rows} spans, expected {expected.num_rows}"
    if _sorted(actual).equals(_sorted(expected)):
        return  # the fast path; anything else gets the row-by-row comparison and its message
    got, want = canonical(actual), canonical(expected)
    for got_row, want_row in zip(got, want, strict=True):
        differing = [k for k in want_row if got_row[k] != want_row[k]]
        assert not differing, f"span {want_row['span_id'].hex()} differs in {differing}"


def _sorted(table: pa.Table) -> pa.Table:
    table = table.select(SPAN_SCHEMA.names)
    return table.take(pc.sort_indices(table, sort_keys=_SORT_KEYS)).combine_chunks()


def trace_ids_of(table: pa.Table) -> set[bytes]:
    return set(pc.unique(table.column("trace_id")).to_pylist())
