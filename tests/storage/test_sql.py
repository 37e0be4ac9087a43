"""The SQL engine on a real SegmentStore holding Jaeger's fixtures: views, helpers, docs examples, safety."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from spanlake.storage.catalog import Snapshot
from spanlake.storage.location import StorageUnavailable
from spanlake.storage.schema import SPAN_SCHEMA, ValueType
from spanlake.storage.sql import SqlBusy, SqlEngine, SqlError, SqlTimeout
from spanlake.storage.sql_views import TYPE_NAMES
from spanlake.storage.store import SegmentStore
from tests.storage.sql_support import (
    ATTACKS,
    DEPENDENCY_CALLS,
    FILE_ACCESS,
    HEAVY,
    all_spans,
    attack,
    dependency_spans,
    doc_examples,
    load_store,
)
from tests.waiting import until

Row = dict[str, Any]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SegmentStore]:
    s = load_store(tmp_path_factory.mktemp("sql") / "data")
    yield s
    s.close()


@pytest.fixture(scope="module")
def engine(store: SegmentStore) -> Iterator[SqlEngine]:
    e = SqlEngine(store.snapshot, timeout_s=10, max_rows=1000)
    yield e
    e.close()


@pytest.fixture(scope="module")
def spans() -> list[Row]:
    out: list[Row] = all_spans().to_pylist()
    return out


def rows(engine: SqlEngine, query: str) -> list[tuple[Any, ...]]:
    result = engine.execute(query)
    assert not result.truncated
    return [tuple(r.values()) for r in result.table.to_pylist()]


def example(name: str) -> str:
    return doc_examples()[name]


def value(attr: Row) -> Any:
    t = attr["type"]
    return {ValueType.STRING: attr["str"], ValueType.INT: attr["int"], ValueType.DOUBLE: attr["double"],
            ValueType.BOOL: attr["bool"], ValueType.BYTES: attr["bytes"]}.get(t, attr["str"])


def by_trace(spans: list[Row]) -> dict[bytes, list[Row]]:
    out: dict[bytes, list[Row]] = defaultdict(list)
    for s in spans:
        out[s["trace_id"]].append(s)
    return out


def root(trace: list[Row]) -> Row:
    return min(trace, key=lambda s: (s["parent_span_id"] is not None, s["start_time_unix_nano"]))


# --- the documented examples, checked against answers computed from the fixtures without SQL ------
TESTED_EXAMPLES = {"error-rate-per-service", "p99-by-operation", "slowest-traces-with-attribute",
                   "service-calls", "typed-attribute", "attribute-keys", "events-with-attribute",
                   "links-between-traces", "traces-with-errors"}


def test_every_documented_example_has_a_test() -> None:
    assert set(doc_examples()) == TESTED_EXAMPLES


def test_example_error_rate_per_service(engine: SqlEngine, spans: list[Row]) -> None:
    total, errors = Counter(s["service_name"] for s in spans), Counter(
        s["service_name"] for s in spans if s["status_code"] == 2)
    expected = sorted(((svc, n, errors[svc], round(errors[svc] / n, 4)) for svc, n in total.items()),
                      key=lambda r: (-r[3], r[0]))
    assert rows(engine, example("error-rate-per-service")) == expected
    assert expected[0][:3] == ("service-x", 4, 4)  # the memory-store fixture: four error spans


def test_example_p99_by_operation(engine: SqlEngine, spans: list[Row]) -> None:
    durations: dict[tuple[str, str], list[float]] = defaultdict(list)
    for s in spans:
        durations[(s["service_name"], s["name"])].append(s["duration_nano"] / 1e6)
    got = rows(engine, example("p99-by-operation"))
    assert len(got) == len(durations)
    for svc, op, n, p99 in got:
        assert n == len(durations[(svc, op)])
        assert p99 == pytest.approx(float(np.quantile(durations[(svc, op)], 0.99)))
    assert [r[3] for r in got] == sorted((r[3] for r in got), reverse=True)


def test_example_slowest_traces_with_attribute(engine: SqlEngine, spans: list[Row]) -> None:
    def has_tag(s: Row) -> bool:
        return any(a["key"] == "sameplacetag1" and value(a) == "sameplacevalue" for a in s["span_attributes"])
    expected = []
    for tid, trace in by_trace(spans).items():
        if any(has_tag(s) for s in trace):
            duration = (max(s["end_time_unix_nano"] for s in trace)
                        - min(s["start_time_unix_nano"] for s in trace)) / 1e6
            r = root(trace)
            expected.append((tid.hex(), r["service_name"], r["name"], duration, len(trace)))
    expected.sort(key=lambda r: (-r[3], r[0]))
    got = rows(engine, example("slowest-traces-with-attribute"))
    assert got == expected[:10]
    assert len(expected) >= 5


def test_example_service_calls(engine: SqlEngine) -> None:
    got = {(caller, callee): calls for caller, callee, calls in rows(engine, example("service-calls"))}
    # The Jaeger fixtures have no cross-service parent links: only the dependency traces count.
    assert got == DEPENDENCY_CALLS


def test_example_typed_attribute(engine: SqlEngine, spans: list[Row]) -> None:
    expected = []
    for s in spans:
        attrs = {a["key"]: a for a in s["span_attributes"]}
        t = attrs.get("temperature")
        if t is not None and t["type"] in (ValueType.DOUBLE, ValueType.INT) and value(t) > 70:
            peer = attrs.get("peer.service")
            expected.append((s["trace_id"].hex(), s["span_id"].hex(), s["name"], float(value(t)),
                             None if peer is None else str(value(peer))))
    assert rows(engine, example("typed-attribute")) == sorted(expected)
    assert len(expected) == 4 and {r[4] for r in expected} == {"service-y"}


def test_example_attribute_keys(engine: SqlEngine, spans: list[Row]) -> None:
    expected: Counter[tuple[str, str, str]] = Counter()
    for s in spans:
        for level in ("span", "resource", "scope"):
            for a in s[f"{level}_attributes"]:
                expected[(level, a["key"], TYPE_NAMES[ValueType(a["type"])])] += 1
    got = rows(engine, example("attribute-keys"))
    assert {(lv, k, t): n for lv, k, t, n in got} == dict(expected)
    assert ("resource", "blob", "bytes") in expected and ("span", "sameplacetag3", "double") in expected


def test_example_events_with_attribute(engine: SqlEngine, spans: list[Row]) -> None:
    expected = [(s["trace_id"].hex(), s["span_id"].hex(), i, str(value(a)))
                for s in spans for i, e in enumerate(s["events"]) for a in e["attributes"][:1]
                if any(x["key"] == "tag3" for x in e["attributes"]) and a["key"] == "tag3"]
    assert rows(engine, example("events-with-attribute")) == sorted(expected)
    assert expected


def test_example_links_between_traces(engine: SqlEngine, spans: list[Row]) -> None:
    expected = []
    for s in spans:
        for link in s["links"]:
            ref = next((value(a) for a in link["attributes"] if a["key"] == "opentracing.ref_type"), None)
            expected.append((s["trace_id"].hex(), s["span_id"].hex(), link["trace_id"].hex(),
                             link["span_id"].hex(), ref))
    got = rows(engine, example("links-between-traces"))
    assert sorted(got, key=str) == sorted(expected, key=str) and len(got) == len(expected) > 0


def test_example_traces_with_errors(engine: SqlEngine, spans: list[Row]) -> None:
    expected = []
    for tid, trace in by_trace(spans).items():
        errors = sum(s["status_code"] == 2 for s in trace)
        if errors:
            r = root(trace)
            expected.append((tid.hex(), r["service_name"], r["name"], len(trace), errors,
                             sorted({s["service_name"] for s in trace})))
    got = [(t, svc, name, n, e, services) for t, svc, name, _start, n, e, services
           in rows(engine, example("traces-with-errors"))]
    assert sorted(got) == sorted(expected)
    assert {t for t, *_ in got} == {"00000000000000010000000000000000", "00000000000000020000000000000000"}


# --- views and helpers ---------------------------------------------------------------------------
def test_spans_view_counts_every_written_span_once(engine: SqlEngine, store: SegmentStore,
                                                   spans: list[Row]) -> None:
    snap = store.snapshot()
    assert snap.segments and snap.tail.num_rows  # both sources are in play
    assert rows(engine, "SELECT count(*) FROM spans") == [(len(spans),)]
    assert rows(engine, "SELECT count(DISTINCT (trace_id, span_id, name, start_time_unix_nano)) FROM spans") \
        == [(len({(s["trace_id"], s["span_id"], s["name"], s["start_time_unix_nano"]) for s in spans}),)]


def test_spans_view_has_every_schema_column_and_the_friendly_ones(engine: SqlEngine) -> None:
    columns = engine.execute("SELECT * FROM spans LIMIT 0").columns
    ids = ("trace_id", "span_id", "parent_span_id")
    stored = {f"{n}_bytes" if n in ids else n for n in SPAN_SCHEMA.names}
    assert stored <= set(columns)
    assert {"trace_id", "span_id", "parent_span_id", "start_time", "end_time", "duration_ms", "kind_name",
            "status_name"} <= set(columns)


def test_friendly_columns_of_a_known_span(engine: SqlEngine) -> None:
    got = engine.execute(
        "SELECT trace_id, span_id, parent_span_id, kind_name, status_name, duration_ms, "
        "strftime(start_time, '%Y-%m-%dT%H:%M:%S.%n'), typeof(start_time) FROM spans "
        "WHERE trace_id = '00000000000000000000000000000011' AND span_id = '0000000000000006'"
    ).table.to_pylist()
    assert [tuple(r.values()) for r in got] == [
        ("00000000000000000000000000000011", "0000000000000006", None, "server", "unset", 0.1,
         "2017-01-26T16:46:31.639875000", "TIMESTAMP_NS")]


def test_child_span_has_hex_parent(engine: SqlEngine) -> None:
    assert rows(engine, "SELECT span_id, parent_span_id FROM spans WHERE trace_id = "
                        "'00000000000000000000000000000007' ORDER BY span_id") == [
        ("0000000000000002", None), ("0000000000000003", "0000000000000002")]


def test_traces_view_summarises_each_trace(engine: SqlEngine) -> None:
    got = rows(engine, "SELECT root_service_name, root_span_name, span_count, error_count, services "
                       "FROM traces WHERE trace_id = '00000000000000000000000000000011'")
    assert got == [("example-service-2", "example-operation-2", 5, 0,
                    ["example-service-1", "example-service-2", "example-service-3"])]
    assert rows(engine, "SELECT root_service_name, span_count FROM traces WHERE trace_id = "
                        f"'{(0xD2).to_bytes(16, 'big').hex()}'") == [("world", 4)]


def test_traces_view_falls_back_to_the_earliest_span_without_a_root(engine: SqlEngine) -> None:
    # Memory-store trace ...0001 has only children (their parents were never sent).
    got = rows(engine, "SELECT root_span_name, root_span_id FROM traces "
                       "WHERE trace_id = '00000000000000010000000000000000'")
    assert got == [("test-general-conversion-2", "0000000000000002")]


@pytest.mark.parametrize(("helper", "key", "expected"), [
    ("attr", "sameplacetag1", "sameplacevalue"),
    ("attr", "sameplacetag2", "123"),
    ("attr", "sameplacetag3", "72.5"),
    ("attr", "sameplacetag4", "true"),
    ("attr", "blob", "AAAwOQ=="),
    ("attr", "missing", None),
    ("attr_type", "sameplacetag2", "int"),
    ("attr_type", "sameplacetag3", "double"),
    ("attr_type", "blob", "bytes"),
    ("has_attr", "sameplacetag4", True),
    ("has_attr", "missing", False),
    ("attr_str", "sameplacetag2", None),
    ("attr_int", "sameplacetag2", 123),
    ("attr_int", "sameplacetag3", None),
    ("attr_double", "sameplacetag2", 123.0),
    ("attr_double", "sameplacetag3", 72.5),
    ("attr_bool", "sameplacetag4", True),
    ("attr_bool", "sameplacetag1", None),
    ("attr_bytes", "blob", b"\x00\x00\x30\x39"),
])
def test_attribute_helpers_keep_the_type(engine: SqlEngine, helper: str, key: str, expected: Any) -> None:
    # Trace ...0224 carries one span with a string, int, double, bool and bytes span attribute each.
    got = rows(engine, f"SELECT {helper}(span_attributes, '{key}') FROM spans WHERE "
                       "trace_id = '00000000000000000000000000000224' AND has_attr(span_attributes, 'blob')")
    assert got == [(expected,)]


def test_attribute_helpers_work_at_every_level(engine: SqlEngine) -> None:
    assert rows(engine, "SELECT DISTINCT attr_double(resource_attributes, 'sameplacetag3') FROM spans "
                        "WHERE has_attr(resource_attributes, 'sameplacetag3')") == [(72.5,)]
    got = rows(engine, "SELECT attr_int(scope_attributes, 'sameplacescopeattribute2'), "
                       "attr(span_attributes, 'sameplacespanattribute1') FROM spans "
                       "WHERE has_attr(scope_attributes, 'sameplacescopeattribute2')")
    assert got == [(123, "sameplacevalue")]
    assert rows(engine, "SELECT count(*) FROM links WHERE attr_bool(attributes, 'sameplacelinkattribute4')") \
        == [(1,)]


def test_arrays_and_kvlists_read_as_their_otlp_json(tmp_path: Path) -> None:
    table = dependency_spans().slice(0, 1)
    from spanlake.storage.attributes import attrs
    table = table.set_column(SPAN_SCHEMA.get_field_index("span_attributes"), "span_attributes",
                             [[attrs({"list": [1, "a"], "map": {"k": True}})]])
    s = SegmentStore(tmp_path / "data")
    try:
        s.write(table)
        e = SqlEngine(s.snapshot)
        got = rows(e, "SELECT attr_type(span_attributes, 'list'), attr(span_attributes, 'list'), "
                      "attr(span_attributes, 'map') FROM spans")
        e.close()
    finally:
        s.close()
    kind, array, kvlist = got[0]
    assert kind == "array"
    assert json.loads(array) == {"values": [{"intValue": "1"}, {"stringValue": "a"}]}
    assert json.loads(kvlist) == {"values": [{"key": "k", "value": {"boolValue": True}}]}


# --- freshness and plain engines ----------------------------------------------------------------
def test_spans_acknowledged_a_moment_ago_are_visible(tmp_path: Path) -> None:
    s = load_store(tmp_path / "data")
    e = SqlEngine(s.snapshot)
    try:
        before = rows(e, "SELECT count(*) FROM spans WHERE service_name = 'hello'")[0][0]
        s.write(dependency_spans())  # acknowledged: in the WAL and the tail, not in any segment
        assert rows(e, "SELECT count(*) FROM spans WHERE service_name = 'hello'") == [(before + 4,)]
    finally:
        e.close()
        s.close()


PLAIN_DUCKDB = """
import json, sys, duckdb
rows = duckdb.sql("SELECT service_name, count(*) FROM read_parquet($p, hive_partitioning = true) "
                  "GROUP BY 1", params={"p": sys.argv[1] + "/spans/*/*/*/*.parquet"}).fetchall()
print(json.dumps(dict(rows)))
"""


def test_plain_duckdb_reads_the_store_directory(tmp_path: Path, spans: list[Row]) -> None:
    s = load_store(tmp_path / "data")
    s.close()  # flushes the tail: everything is in segments now
    # -I: an isolated interpreter that does not put the repository on sys.path; only duckdb is imported.
    out = subprocess.run([sys.executable, "-I", "-c", PLAIN_DUCKDB, str(tmp_path / "data")],
                         capture_output=True, text=True, check=True, timeout=60).stdout
    assert json.loads(out) == dict(Counter(sp["service_name"] for sp in spans))


# --- safety ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("query", "message"), ATTACKS, ids=[q for q, _ in ATTACKS])
def test_attack_is_refused_with_a_clear_error(engine: SqlEngine, store: SegmentStore, tmp_path: Path,
                                              query: str, message: str) -> None:
    with pytest.raises(SqlError) as err:
        engine.execute(attack(query, store, tmp_path))
    assert message in err.value.message
    assert list(tmp_path.iterdir()) == []  # nothing was written
    assert rows(engine, "SELECT count(*) > 0 FROM spans") == [(True,)]  # the views are all still there


def test_duckdb_switches_are_on(engine: SqlEngine, store: SegmentStore) -> None:
    names = ("enable_external_access", "lock_configuration", "autoload_known_extensions",
             "autoinstall_known_extensions", "allowed_directories")
    got = rows(engine, "SELECT " + ", ".join(f"current_setting('{n}')" for n in names))
    assert got == [(False, True, False, False, [])]
    allowed = rows(engine, "SELECT current_setting('allowed_paths')")[0][0]
    assert sorted(allowed) == sorted(s.path for s in store.snapshot().segments)  # those files, no directory


def test_the_snapshots_own_segment_file_reads_as_the_spans_it_holds(engine: SqlEngine,
                                                                     store: SegmentStore) -> None:
    # The one file access left: DuckDB reads these files for the views, so a query may name them
    # too, and gets the spans that ``spans`` already shows, nothing more.
    segment = store.snapshot().segments[0]
    direct = rows(engine, f"SELECT count(*), count(DISTINCT trace_id) FROM read_parquet('{segment.path}')")
    assert direct == [(segment.num_spans, segment.meta["trace_count"])]
    assert rows(engine, f"SELECT count(*) FROM read_parquet('{segment.path}') s JOIN spans v "
                        "ON s.trace_id = v.trace_id_bytes AND s.span_id = v.span_id_bytes "
                        "AND s.start_time_unix_nano = v.start_time_unix_nano") == [(segment.num_spans,)]


@pytest.mark.parametrize("where", ["partition", "outside"])
def test_a_parquet_file_planted_where_a_query_can_name_it_is_refused(engine: SqlEngine, store: SegmentStore,
                                                                      tmp_path: Path, where: str) -> None:
    segment = store.snapshot().segments[0].path
    folder = Path(segment).parent if where == "partition" else tmp_path
    planted = folder / ".planted.parquet"  # a dot-file: the store's listings skip it
    pq.write_table(pa.table({"secret": [1]}), planted)
    try:
        with pytest.raises(SqlError, match=FILE_ACCESS):
            engine.execute(f"SELECT * FROM read_parquet('{planted}')")
        with pytest.raises(SqlError, match=FILE_ACCESS):
            engine.execute(f"SELECT * FROM read_parquet(['{segment}', '{planted}'])")
    finally:
        planted.unlink()


def test_settings_are_locked_underneath_the_statement_check(engine: SqlEngine) -> None:
    # What the statement check never lets through, DuckDB itself still refuses: a query's own
    # connection, as the engine hands it to the statement.
    con = engine._connection()
    try:
        for statement in ("SET allowed_directories = ['/']", "SET allowed_paths = ['/etc/passwd']",
                          "SET enable_external_access = true", "RESET lock_configuration"):
            with pytest.raises(duckdb.Error, match="configuration has been locked"):
                con.execute(statement)
        with pytest.raises(duckdb.PermissionException):
            con.execute("SELECT * FROM read_text('/etc/hostname')").fetchall()
    finally:
        con.close()


# --- limits ----------------------------------------------------------------------------------------
def test_row_cap_reports_truncation(engine: SqlEngine, spans: list[Row]) -> None:
    capped = engine.execute("SELECT * FROM spans", max_rows=5)
    assert capped.table.num_rows == 5 and capped.truncated
    exact = engine.execute("SELECT * FROM spans", max_rows=len(spans))
    assert exact.table.num_rows == len(spans) and not exact.truncated


def test_max_rows_cannot_exceed_the_engine_cap(store: SegmentStore) -> None:
    e = SqlEngine(store.snapshot, max_rows=3)
    try:
        result = e.execute("SELECT * FROM range(100)", max_rows=50)
    finally:
        e.close()
    assert result.table.num_rows == 3 and result.truncated


def test_huge_result_stops_at_the_cap_quickly(engine: SqlEngine) -> None:
    started = time.monotonic()
    result = engine.execute("SELECT * FROM range(1000000000000)", max_rows=10)
    assert result.table.column(0).to_pylist() == list(range(10)) and result.truncated
    assert time.monotonic() - started < 5


def test_query_past_the_time_limit_is_interrupted(store: SegmentStore) -> None:
    e = SqlEngine(store.snapshot, timeout_s=0.5)
    try:
        started = time.monotonic()
        with pytest.raises(SqlTimeout, match="time limit"):
            e.execute(HEAVY)
        assert time.monotonic() - started < 5
        assert rows(e, "SELECT 42") == [(42,)]  # the engine is fine afterwards
    finally:
        e.close()


def test_queries_beyond_the_concurrency_cap_are_refused(store: SegmentStore) -> None:
    e = SqlEngine(store.snapshot, timeout_s=1.5, max_concurrent=1)
    errors: list[Exception] = []

    def heavy() -> None:
        try:
            e.execute(HEAVY)
        except SqlError as err:
            errors.append(err)

    worker = threading.Thread(target=heavy)
    worker.start()
    try:
        until(lambda: e.running == 1, 30, "the heavy query holds the slot")
        with pytest.raises(SqlBusy, match="retry"):
            e.execute("SELECT 1")
    finally:
        worker.join()
    assert [type(x) for x in errors] == [SqlTimeout]
    assert rows(e, "SELECT 1") == [(1,)]  # the slot is free again
    e.close()


def test_memory_limit_stops_a_greedy_query(store: SegmentStore) -> None:
    e = SqlEngine(store.snapshot, memory_limit="64MB")
    try:
        with pytest.raises(SqlError, match="Out of Memory"):
            e.execute("SELECT count(DISTINCT i) FROM range(30000000) t(i)")
        assert rows(e, "SELECT count(*) FROM spans")[0][0] > 0
    finally:
        e.close()


def test_syntax_errors_carry_duckdbs_message(engine: SqlEngine) -> None:
    with pytest.raises(SqlError, match="syntax error"):
        engine.execute("SELEC 1")
    with pytest.raises(SqlError, match='"nope" not found'):
        engine.execute("SELECT nope FROM spans")


def test_a_tail_of_many_small_requests_neither_stalls_other_threads_nor_outlives_the_limit() -> None:
    # 68,000 one-request chunks: scanned as an Arrow dataset this held the GIL for seconds, so
    # ingest threads (and the timer that interrupts the query) stalled behind it.
    tail = pa.concat_tables([all_spans()] * 2000)
    e = SqlEngine(lambda: Snapshot([], tail), timeout_s=1.0)
    gaps: list[float] = []
    done = threading.Event()

    def tick() -> None:
        while not done.is_set():
            t = time.perf_counter()
            time.sleep(0.005)
            gaps.append(time.perf_counter() - t)

    ticker = threading.Thread(target=tick)
    ticker.start()
    started = time.monotonic()
    try:
        e.execute("SELECT count(DISTINCT attr(span_attributes, 'sameplacetag1')) FROM spans")
    except SqlTimeout:
        pass  # a slow machine may hit the limit; what matters is when and who else could run
    finally:
        done.set()
        ticker.join()
        e.close()
    assert time.monotonic() - started < 3.0
    assert max(gaps) < 0.5


def test_a_segment_compacted_away_after_the_snapshot_is_skipped_by_a_fresh_one(tmp_path: Path,
                                                                               spans: list[Row]) -> None:
    s = load_store(tmp_path / "data")
    try:
        stale = s.snapshot()
        gone = stale.segments[0]
        Path(gone.path).rename(tmp_path / "moved.parquet")  # to a reader, what compaction's delete looks like
        s.catalog.invalidate()
        first = [stale]
        e = SqlEngine(lambda: first.pop() if first else s.snapshot())
        assert rows(e, "SELECT count(*) FROM spans") == [(len(spans) - gone.num_spans,)]
        e.close()
    finally:
        s.close()


def test_a_flush_between_queries_moves_spans_from_the_tail_to_a_newly_allowed_segment(
        tmp_path: Path, spans: list[Row]) -> None:
    s = load_store(tmp_path / "data")
    e = SqlEngine(s.snapshot)
    try:
        before = rows(e, "SELECT current_setting('allowed_paths'), count(*) FROM spans")[0]
        s.flush()  # the tail becomes a new segment: a different file list, so another database
        after = rows(e, "SELECT current_setting('allowed_paths'), count(*) FROM spans")[0]
        assert before[1] == after[1] == len(spans)
        assert set(before[0]) < set(after[0]) == {seg.path for seg in s.snapshot().segments}
    finally:
        e.close()
        s.close()


def test_an_unreadable_segment_is_the_stores_failure_not_the_querys(tmp_path: Path) -> None:
    s = load_store(tmp_path / "data")
    try:
        Path(s.snapshot().segments[0].path).write_bytes(b"not a parquet file")  # a damaged disk
        e = SqlEngine(s.snapshot)
        with pytest.raises(StorageUnavailable, match="cannot read the span store"):
            e.execute("SELECT count(*) FROM spans")
        e.close()
    finally:
        s.close()
