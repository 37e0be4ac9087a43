"""Test data for the SQL API: Jaeger's fixtures in a real SegmentStore, and the examples of docs/sql.md.

The store holds Jaeger's 32 storage-suite traces, the memory-store fixture (4 error spans with typed
attributes) and, built in code as Jaeger's own suite does, the dependency traces hello -> world (1
call) and world -> hello (3 calls). Part is flushed into segments and part left in the unflushed
tail, so every query reads both.
"""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa

from collector.formats.otlp import decode_otlp_json
from storage.attributes import attrs
from storage.rows import spans_table
from storage.store import SegmentStore, StoreConfig
from tests.paths import FIXTURES, JAEGER_SUITE, REPO

MEMORY_FIXTURE = FIXTURES / "jaeger" / "memory-store" / "otel_traces_01.json"
DOCS = REPO / "docs" / "sql.md"
DEPENDENCY_CALLS = {("hello", "world"): 1, ("world", "hello"): 3}
_BASE_NS = 1_700_000_000_000_000_000


def dependency_spans() -> pa.Table:
    """hello -> world once in one trace, world -> hello three times in another."""
    def span(trace: int, span_id: int, parent: int | None, service: str, start_ms: int) -> dict[str, object]:
        return {"trace_id": trace.to_bytes(16, "big"), "span_id": span_id.to_bytes(8, "big"),
                "parent_span_id": None if parent is None else parent.to_bytes(8, "big"),
                "name": f"{service}-op", "kind": 2, "resource_attributes": attrs({"service.name": service}),
                "start_time_unix_nano": _BASE_NS + start_ms * 10**6,
                "end_time_unix_nano": _BASE_NS + (start_ms + 10) * 10**6}
    rows = [span(0xD1, 1, None, "hello", 0), span(0xD1, 2, 1, "world", 1),
            span(0xD2, 1, None, "world", 0), *(span(0xD2, 10 + i, 1, "hello", 1 + i) for i in range(3))]
    return spans_table(rows)


def fixture_tables() -> list[pa.Table]:
    paths = sorted((JAEGER_SUITE / "traces").glob("*.json"))
    tables = [decode_otlp_json(p.read_bytes()).spans for p in paths]
    tables.append(decode_otlp_json(MEMORY_FIXTURE.read_bytes()).spans)
    tables.append(dependency_spans())
    return tables


def all_spans() -> pa.Table:
    """Every span written by ``load_store``: what the answers are computed from, without SQL."""
    return pa.concat_tables(fixture_tables())


def load_store(data_dir: Path) -> SegmentStore:
    """A writable store (no background flush) with half the fixtures in segments, half in the tail."""
    store = SegmentStore(data_dir, StoreConfig(flush_interval_s=3600))
    tables = fixture_tables()
    half = len(tables) // 2
    for table in tables[:half]:
        store.write(table)
    store.flush()
    for table in tables[half:]:
        store.write(table)
    return store


def doc_examples() -> dict[str, str]:
    """The ``-- example: <name>`` SQL blocks of docs/sql.md, by name."""
    blocks = re.findall(r"```sql\n(.*?)```", DOCS.read_text(), flags=re.S)
    examples = {}
    for block in blocks:
        m = re.match(r"-- example: (\S+)\n", block)
        if m:
            examples[m.group(1)] = block
    return examples
