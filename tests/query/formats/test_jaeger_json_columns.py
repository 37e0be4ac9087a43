"""The column-wise Jaeger JSON builder gives exactly what the row-by-row one gave, on every mapping rule,
for tables in one chunk, several chunks and slices (the storage reader returns all three), small and
large (a large table groups processes in pyarrow, a small one in Python)."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from spanlake.collector.formats.otlp import decode_otlp_json
from spanlake.query.formats.jaeger_json import spans_to_jaeger_traces
from spanlake.storage.attributes import attr, attrs
from spanlake.storage.rows import spans_table
from tests.query.formats import jaeger_rowwise
from tests.query.formats.test_jaeger_json import MEMORY_FIXTURE, T0, rich_trace


def varied_spans(n: int) -> pa.Table:
    """``n`` spans over three traces with every value type, kind and status, null and all-zero
    parents, resources that differ only in one member (an int 1 against a string "1", a -0.0 against
    0.0), events, links and warnings on some."""
    resources = [
        attrs({"service.name": "a", "v": 1}),
        attrs({"service.name": "a", "v": "1"}),
        attrs({"service.name": "a", "v": 1.0}),
        attrs({"service.name": "b", "z": -0.0}),
        attrs({"service.name": "b", "z": 0.0}),
        attrs({"host": "no-service"}),
        [],
    ]
    values = ["s", 7, 2**60, -(2**55), 0.5, float("nan"), float("inf"), True, False, b"\x01\x02",
              [1, "x"], {"k": [True]}, None]
    rows = []
    for i in range(n):
        trace = bytes(8) + i.to_bytes(8, "big") if i % 3 == 0 else bytes([i % 3]) * 16
        rows.append({
            "trace_id": trace if i % 3 else bytes(8) + bytes.fromhex("00000000000000ff"),
            "span_id": (i + 1).to_bytes(8, "big"),
            "parent_span_id": None if i % 5 == 0 else bytes(8) if i % 5 == 1 else i.to_bytes(8, "big"),
            "name": f"op-{i % 4}",
            "kind": i % 6,
            "flags": i * 37 % 1024,
            "status_code": i % 3,
            "status_message": "bad" if i % 7 == 0 else "",
            "trace_state": "k=v" if i % 11 == 0 else "",
            "scope_name": "lib" if i % 2 else "",
            "scope_version": "1.0" if i % 4 == 1 else "",
            "start_time_unix_nano": T0 + i * 1_234_567,
            "end_time_unix_nano": T0 + i * 1_234_567 + (i % 9) * 1001 - 2000,
            "service_name": "a" if i % 7 < 3 else "b" if i % 7 < 5 else "",
            "resource_attributes": resources[i % 7],
            "span_attributes": [attr(f"k{j}", values[(i + j) % len(values)]) for j in range(i % 4)]
            + ([attr("@jaeger@warnings", ["w1", "w2"])] if i % 13 == 0 else [])
            + ([attr("@jaeger@warnings", "single")] if i % 17 == 0 else []),
            "events": [{"time_unix_nano": T0 + i, "name": "e" if i % 2 else "",
                        "dropped_attributes_count": 0,
                        "attributes": attrs({"event": "x"} if i % 4 == 1 else {"n": i})}]
            if i % 6 == 0 else [],
            "links": [{"trace_id": trace, "span_id": i.to_bytes(8, "big"), "trace_state": "", "flags": 0,
                       "dropped_attributes_count": 0,
                       "attributes": attrs({"opentracing.ref_type": "child_of" if i % 2 else "x"})}]
            if i % 8 == 0 else [],
        })
    return spans_table(rows)


def shapes(table: pa.Table) -> list[pa.Table]:
    """The table as one chunk, as several chunks, and as a slice out of a bigger table."""
    half = table.num_rows // 2
    chunked = pa.concat_tables([table.slice(0, half), table.slice(half)])
    padded = pa.concat_tables([table, table]).combine_chunks().slice(table.num_rows)
    return [table, chunked, padded]


@pytest.mark.parametrize("n", [1, 40, 700])
def test_varied_spans_build_as_row_by_row(n: int) -> None:
    for table in shapes(varied_spans(n)):
        assert _json(spans_to_jaeger_traces(table)) == _json(jaeger_rowwise.spans_to_jaeger_traces(table))


def test_rich_trace_and_memory_fixture_build_as_row_by_row() -> None:
    memory = decode_otlp_json(MEMORY_FIXTURE.read_bytes()).spans
    for table in (*shapes(rich_trace()), *shapes(memory)):
        assert _json(spans_to_jaeger_traces(table)) == _json(jaeger_rowwise.spans_to_jaeger_traces(table))


def test_empty_table_has_no_traces() -> None:
    assert spans_to_jaeger_traces(varied_spans(3).slice(0, 0)) == []


def _json(traces: object) -> str:
    # Compared as JSON text: NaN is never equal to itself, and the response is text anyway.
    return json.dumps(traces, sort_keys=False)
