"""Test data for the SQL API: Jaeger's fixtures in a real SegmentStore, and the examples of docs/sql.md.

The store holds Jaeger's 32 storage-suite traces, the memory-store fixture (4 error spans with typed
attributes) and, built in code as Jaeger's own suite does, the dependency traces hello -> world (1
call) and world -> hello (3 calls). Part is flushed into segments and part left in the unflushed
tail, so every query reads both.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

import pyarrow as pa

from spanlake.collector.formats.otlp import decode_otlp_json
from spanlake.storage.attributes import attrs
from spanlake.storage.rows import spans_table
from spanlake.storage.segments import sidecar_path
from spanlake.storage.store import SegmentStore, StoreConfig
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


# A query that runs for minutes unless interrupted.
HEAVY = "SELECT sum(a.i * b.i) FROM range(200000) a(i), range(200000) b(i)"

FILE_ACCESS = "file system operations are disabled by configuration"
NOT_SELECT = "only SELECT queries are allowed"
ATTACKS = [
    ("SELECT * FROM read_csv('/etc/passwd')", FILE_ACCESS),
    ("SELECT * FROM read_text('/etc/passwd')", FILE_ACCESS),
    ("SELECT * FROM read_blob('/etc/hostname')", FILE_ACCESS),
    ("SELECT * FROM '/etc/passwd.csv'", FILE_ACCESS),
    ("SELECT * FROM glob('/*')", FILE_ACCESS),
    # The snapshot's own segment files are the one thing DuckDB may open (they hold nothing the
    # views do not show): everything next to them, above them or named like them stays shut.
    ("SELECT * FROM read_blob('{segment_sidecar}')", FILE_ACCESS),
    ("SELECT * FROM read_parquet('{partition}/*.parquet')", FILE_ACCESS),
    ("SELECT * FROM glob('{partition}/*')", FILE_ACCESS),
    ("SELECT * FROM glob('{data}/**')", FILE_ACCESS),
    ("SELECT * FROM read_parquet('{data}/spans/*/*/*/*.parquet')", FILE_ACCESS),
    ("SELECT * FROM read_blob('{wal}')", FILE_ACCESS),
    ("SELECT * FROM read_text('{data}/wal/writer-id')", FILE_ACCESS),
    ("SELECT * FROM read_text('{segment}/../../../../../wal/writer-id')", FILE_ACCESS),
    ("SELECT * FROM read_parquet('{partition}/not-a-segment.parquet')", FILE_ACCESS),
    ("SELECT * FROM read_parquet('{segment}x')", FILE_ACCESS),
    ("SELECT * FROM read_json('http://127.0.0.1:9/x.json')", FILE_ACCESS),
    ("SELECT * FROM read_parquet('https://example.com/x.parquet')", FILE_ACCESS),
    ("COPY (SELECT * FROM spans) TO '{tmp}/out.csv'", NOT_SELECT),
    ("EXPORT DATABASE '{tmp}/export'", NOT_SELECT),
    ("ATTACH '{tmp}/x.duckdb' AS x", NOT_SELECT),
    ("INSTALL httpfs", NOT_SELECT),
    ("LOAD httpfs", NOT_SELECT),
    ("SET enable_external_access = true", NOT_SELECT),
    ("SET memory_limit = '100GB'", NOT_SELECT),
    ("SET allowed_directories = ['/']", NOT_SELECT),
    ("SET allowed_paths = ['/etc/passwd']", NOT_SELECT),
    ("RESET allowed_paths", NOT_SELECT),
    ("SELECT * FROM query('SET allowed_directories = [''/'']')", "Expected a single SELECT statement"),
    ("RESET lock_configuration", NOT_SELECT),
    ("PRAGMA enable_profiling", NOT_SELECT),
    ("SET VARIABLE x = 1", NOT_SELECT),
    ("CREATE TABLE t AS SELECT 1", NOT_SELECT),
    ("CREATE MACRO m(x) AS x", NOT_SELECT),
    ("INSERT INTO spans SELECT * FROM spans", NOT_SELECT),
    ("UPDATE spans SET name = 'x'", NOT_SELECT),
    ("DELETE FROM spans", NOT_SELECT),
    ("DROP VIEW spans", NOT_SELECT),
    ("DROP MACRO attr", NOT_SELECT),
    ("CALL pragma_version()", NOT_SELECT),
    ("CHECKPOINT", NOT_SELECT),
    ("EXPLAIN ANALYZE SELECT 1", NOT_SELECT),
    ("SELECT 1; DROP VIEW spans", "one statement per query"),
    ("SELECT * FROM query('ATTACH ''{tmp}/x.duckdb''')", "Expected a single SELECT statement"),
    ("SELECT * FROM snap", "does not exist"),  # a Python variable in the engine: never scanned
]


def attack(template: str, store: SegmentStore, tmp: Path) -> str:
    """``template`` aimed at real paths: a segment the query may read, the files around it, the WAL."""
    return attack_at(template, store.data_dir, store.snapshot().segments[0].path, tmp)


def attack_at(template: str, data_dir: Path, segment: str, tmp: Path) -> str:
    """``template`` with its paths filled in from ``data_dir`` and one segment path under it."""
    wal_files = sorted(data_dir.glob("wal/*/*.wal")) or sorted(p for p in data_dir.glob("wal/*")
                                                               if p.is_file())
    return template.format(segment=segment, segment_sidecar=sidecar_path(segment, ".tids"),
                           partition=posixpath.dirname(segment), data=data_dir, wal=wal_files[0], tmp=tmp)
