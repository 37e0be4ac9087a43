"""The storage conformance suite: the cases every backend must pass, as plain functions of a store.

Reproduces Jaeger's storage integration suite (jaeger ``internal/storage/integration``;
the fixture plumbing is in ``jaeger_suite.py``, provenance in ``tests/fixtures/README.md``) plus the
edge cases of the ``storage/api.py`` docstrings. ``test_conformance.py`` runs every case against every
backend.

Backends may make writes visible "within about a second" (the ``SpanWriter`` contract), so every
read-after-write goes through ``settle`` (calls ``flush()`` when the store has one) and ``eventually``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa

from spanlake.storage.api import DependencyLink, Operation, TraceQuery
from spanlake.storage.attributes import attrs
from spanlake.storage.rows import spans_table
from spanlake.storage.schema import SPAN_KIND_BY_NAME, SPAN_SCHEMA, STATUS_ERROR
from tests import waiting
from tests.storage.jaeger_suite import MEMORY_STORE, QueryCase, decode_fixture, query_cases, suite_trace
from tests.storage.spans import (
    BASE_NS,
    NS_PER_DAY,
    assert_same_spans,
    big_trace,
    span,
    tid,
    trace_ids_of,
)

T = TypeVar("T")
Store = Any  # a SpanWriter + SpanReader; Any so backends need not share a base class


# -- read-after-write -------------------------------------------------------------------------------


def settle(store: Store) -> None:
    """Make completed writes visible, when the backend offers a way to (the segment store's flush)."""
    flush = getattr(store, "flush", None)
    if callable(flush):
        flush()


def eventually(check: Callable[[], T], timeout: float = 3.0) -> T:
    """``tests.waiting.eventually`` with the store contract's slack (visible within about a second)."""
    return waiting.eventually(check, timeout)


def write(store: Store, *tables: pa.Table) -> None:
    for table in tables:
        store.write(table)
    settle(store)


# -- Jaeger's query cases -------------------------------------------------------------------------


def load_query_fixtures(store: Store) -> None:
    """Write every trace named by any case first, so the others act as counter-examples."""
    stems = dict.fromkeys(stem for case in query_cases() for stem in case.expected)
    write(store, *(suite_trace(stem) for stem in stems))


def check_query_case(store: Store, case: QueryCase) -> None:
    """One ``queries.json`` case: exact trace count, exact span count, equal content."""
    expected = pa.concat_tables([suite_trace(stem) for stem in case.expected])

    def check() -> None:
        found = store.find_traces(case.query)
        assert trace_ids_of(found) == trace_ids_of(expected), case.caption
        assert_same_spans(found, expected)
        assert set(store.find_trace_ids(case.query)) == trace_ids_of(expected)

    eventually(check)


# -- the cases --------------------------------------------------------------------------------------


def get_services_lists_the_services_of_example_trace(store: Store) -> None:
    write(store, suite_trace("example_trace"))
    eventually(lambda: _assert_equal(store.get_services(),
                                     ["example-service-1", "example-service-2", "example-service-3"]))


def get_operations_lists_names_with_kinds(store: Store) -> None:
    write(store, suite_trace("example_trace"))
    expected = [Operation("example-operation-1", 0), Operation("example-operation-3", 2),
                Operation("example-operation-4", 3)]
    eventually(lambda: _assert_equal(store.get_operations("example-service-1"), expected))
    assert store.get_operations("example-service-1", SPAN_KIND_BY_NAME["server"]) == [expected[1]]
    assert store.get_operations("no-such-service") == []


def get_traces_returns_the_whole_trace(store: Store) -> None:
    trace = suite_trace("example_trace")
    write(store, trace)
    found = eventually(lambda: _nonempty(store.get_traces([tid(0x11)])))
    assert_same_spans(found, trace)
    assert found.num_rows == 5


def get_traces_skips_a_missing_trace_silently(store: Store) -> None:
    write(store, suite_trace("example_trace"))
    eventually(lambda: _nonempty(store.get_traces([tid(0x11)])))
    missing = store.get_traces([tid(0xdead)])
    assert missing.num_rows == 0 and missing.schema.equals(SPAN_SCHEMA)
    nothing = store.find_traces(TraceQuery(service_name="no-such-service"))
    assert nothing.num_rows == 0 and nothing.schema.equals(SPAN_SCHEMA)
    both = store.get_traces([tid(0xdead), tid(0x11)])
    assert trace_ids_of(both) == {tid(0x11)}


def writes_become_visible_within_about_a_second(store: Store) -> None:
    # No ``settle``: the contract alone ("visible ... within about a second"), with some slack.
    store.write(spans_table([span(0x3E, 1, "visible-svc")]))
    eventually(lambda: _rows(store.get_traces([tid(0x3E)]), 1), timeout=2.0)
    eventually(lambda: _assert_equal(store.find_trace_ids(TraceQuery(service_name="visible-svc")),
                                     [tid(0x3E)]), timeout=2.0)


def concurrent_writes_are_all_stored(store: Store) -> None:
    # Transports call ``write`` from many threads at once (FastAPI's pool, gRPC workers).
    def writer(base: int) -> None:
        for i in range(25):
            store.write(spans_table([span(base + i, 1, "threads-svc", start=BASE_NS + base + i)]))

    threads = [threading.Thread(target=writer, args=(base,)) for base in (0x1000, 0x2000, 0x3000, 0x4000)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    settle(store)
    query = TraceQuery(service_name="threads-svc", search_depth=1000)
    found = eventually(lambda: _rows(store.find_traces(query), 100))
    assert len(trace_ids_of(found)) == 100


def a_rejected_write_stores_nothing(store: Store) -> None:
    good = spans_table([span(0x3F, 1, "kept-svc")])
    bad = good.drop_columns(["name"])  # not in the span schema
    try:
        store.write(bad)
    except Exception:  # any error will do; what matters is that nothing of it is stored
        pass
    else:
        raise AssertionError("a table without the name column was accepted")
    write(store, good)
    eventually(lambda: _assert_equal(store.get_services(), ["kept-svc"]))
    assert store.get_traces([tid(0x3F)]).num_rows == 1


def a_trace_written_in_several_requests_is_returned_whole(store: Store) -> None:
    # Spans of one trace arrive in separate requests; a backend may hold them in different places
    # (flushed segments and an unflushed tail) and must still return the trace whole.
    first = spans_table([span(0x3D, 1, "split-svc", "root")])
    second = spans_table([span(0x3D, 2, "split-svc", "child", parent=1, start=BASE_NS + 5000)])
    write(store, first)
    store.write(second)
    found = eventually(lambda: _rows(store.get_traces([tid(0x3D)]), 2))
    assert_same_spans(found, pa.concat_tables([first, second]))
    by_child = TraceQuery(service_name="split-svc", operation_name="child")
    eventually(lambda: _rows(store.find_traces(by_child), 2))


def get_traces_returns_a_10008_span_trace(store: Store) -> None:
    trace = big_trace(tid(0x1A46E), np.arange(1, 10_009, dtype=np.uint64), BASE_NS)
    write(store, trace)
    found = eventually(lambda: _rows(store.get_traces([tid(0x1A46E)]), 10_008))
    assert_same_spans(found, trace)


def get_traces_preserves_duplicate_span_ids(store: Store) -> None:
    span_ids = np.arange(1, 201, dtype=np.uint64)
    span_ids[19::20] = 7  # every 20th span reuses span ID 7, as a buggy client would send
    trace = big_trace(tid(0xD0B), span_ids, BASE_NS)
    write(store, trace)
    found = eventually(lambda: _rows(store.get_traces([tid(0xD0B)]), 200))
    assert len(set(found.column("span_id").to_pylist())) == 190
    assert_same_spans(found, trace)


def get_traces_ignores_time_hints_outside_some_spans(store: Store) -> None:
    hour = 3600 * 10**9
    rows = [span(0x71, 1, "hint-svc", start=BASE_NS),
            span(0x71, 2, "hint-svc", parent=1, start=BASE_NS + 2 * hour)]
    write(store, spans_table(rows))
    found = eventually(lambda: _rows(store.get_traces([tid(0x71)], BASE_NS + hour, BASE_NS + 3 * hour), 2))
    assert_same_spans(found, spans_table(rows))


def trace_spanning_two_days_is_returned_whole(store: Store) -> None:
    rows = [span(0x2D, 1, "days-svc", "yesterday-op", start=BASE_NS - NS_PER_DAY + 60 * 10**9),
            span(0x2D, 2, "days-svc", "today-op", parent=1, start=BASE_NS)]
    write(store, spans_table(rows))
    query = TraceQuery(service_name="days-svc", operation_name="today-op",
                       start_time_min_ns=BASE_NS - 10**9, start_time_max_ns=BASE_NS + 10**9)
    found = eventually(lambda: _rows(store.find_traces(query), 2))
    assert_same_spans(found, spans_table(rows))
    assert store.get_traces([tid(0x2D)], BASE_NS - 10**9, BASE_NS + 10**9).num_rows == 2


def find_traces_without_service_name_searches_every_service(store: Store) -> None:
    shared = {"rfc0013.cross.service": "yes"}
    rows = [span(0xA1, 1, "service-a", span_attributes=attrs(shared)),
            span(0xB1, 1, "service-b", span_attributes=attrs(shared)),
            span(0xC1, 1, "service-c", span_attributes=attrs({"rfc0013.cross.service": "no"}))]
    write(store, spans_table(rows))
    query = TraceQuery(attributes={"rfc0013.cross.service": "yes"})
    eventually(lambda: _assert_equal(set(store.find_trace_ids(query)), {tid(0xA1), tid(0xB1)}))
    assert trace_ids_of(store.find_traces(query)) == {tid(0xA1), tid(0xB1)}


def get_dependencies_counts_calls_between_services(store: Store) -> None:
    rows = [span(0xE1, 1, "hello"), span(0xE1, 2, "world", parent=1)]
    for trace in (0xE2, 0xE3, 0xE4):
        rows += [span(trace, 1, "world"), span(trace, 2, "hello", parent=1),
                 span(trace, 3, "hello", parent=2)]  # same-service child: not a dependency
    write(store, spans_table(rows))
    expected = [DependencyLink("hello", "world", 1), DependencyLink("world", "hello", 3)]
    eventually(lambda: _assert_equal(store.get_dependencies(BASE_NS + 10**9, 3600 * 10**9), expected))
    assert store.get_dependencies(BASE_NS - 3600 * 10**9, 60 * 10**9) == []


def search_depth_keeps_the_most_recent_traces_first(store: Store) -> None:
    rows = [span(0x50 + i, 1, "depth-svc", start=BASE_NS + i * 10**6) for i in range(6)]
    write(store, spans_table(rows))
    query = TraceQuery(service_name="depth-svc", search_depth=3)
    eventually(lambda: _assert_equal(store.find_trace_ids(query), [tid(0x55), tid(0x54), tid(0x53)]))
    assert trace_ids_of(store.find_traces(query)) == {tid(0x55), tid(0x54), tid(0x53)}


def recency_is_the_latest_matching_span_start(store: Store) -> None:
    # Trace 0x61 has the later span overall, but its matching span ("x") is older than 0x62's.
    rows = [span(0x61, 1, "recent-svc", "x", start=BASE_NS),
            span(0x61, 2, "recent-svc", "y", parent=1, start=BASE_NS + 500),
            span(0x62, 1, "recent-svc", "x", start=BASE_NS + 300)]
    write(store, spans_table(rows))
    by_x = TraceQuery(service_name="recent-svc", operation_name="x")
    eventually(lambda: _assert_equal(store.find_trace_ids(by_x), [tid(0x62), tid(0x61)]))
    assert store.find_trace_ids(TraceQuery(service_name="recent-svc")) == [tid(0x61), tid(0x62)]


def filters_hold_on_one_and_the_same_span(store: Store) -> None:
    # The trace has the operation on one span and the slow duration on another: no single span
    # matches both, so the search must not return it (Jaeger issues #1015, #4107).
    rows = [span(0x91, 1, "same-svc", "fast-op", duration=1000),
            span(0x91, 2, "same-svc", "other-op", parent=1, duration=9_000_000)]
    write(store, spans_table(rows))
    eventually(lambda: _assert_equal(store.find_trace_ids(TraceQuery(service_name="same-svc")), [tid(0x91)]))
    slow = 1_000_000
    assert store.find_trace_ids(TraceQuery(operation_name="fast-op", duration_min_ns=slow)) == []
    assert store.find_trace_ids(TraceQuery(operation_name="other-op", duration_min_ns=slow)) == [tid(0x91)]


def tags_compare_as_strings_and_numbers(store: Store) -> None:
    typed = {"count": 123, "ratio": 72.5, "flag": True, "one": 1.0, "word": "sameplacevalue"}
    write(store, spans_table([span(0x81, 1, "typed-svc", span_attributes=attrs(typed))]))
    hit = {tid(0x81)}
    # Text as pdata AsString renders it, and numbers written another way ("72.50", "1.0").
    for key, text in [("count", "123"), ("ratio", "72.5"), ("flag", "true"), ("one", "1"),
                      ("word", "sameplacevalue"), ("ratio", "72.50"), ("one", "1.0")]:
        query = TraceQuery(service_name="typed-svc", attributes={key: text})
        eventually(lambda q=query: _assert_equal(set(store.find_trace_ids(q)), hit))
    for key, text in [("count", "124"), ("count", "123.5"), ("flag", "false"), ("flag", "1"),
                      ("word", "sameplace"), ("missing", "x")]:
        assert store.find_trace_ids(TraceQuery(service_name="typed-svc", attributes={key: text})) == []


def tags_match_bytes_arrays_and_maps_by_their_text(store: Store) -> None:
    # pdata AsString: bytes as base64, arrays and maps as compact JSON of their plain values.
    typed = {"blob": b"\x00\x000", "list": [1, "a", True], "map": {"k": "v", "n": 2}}
    write(store, spans_table([span(0x82, 1, "complex-svc", span_attributes=attrs(typed))]))
    for key, text in [("blob", "AAAw"), ("list", '[1,"a",true]'), ("map", '{"k":"v","n":2}')]:
        query = TraceQuery(service_name="complex-svc", attributes={key: text})
        eventually(lambda q=query: _assert_equal(store.find_trace_ids(q), [tid(0x82)]))
    assert store.find_trace_ids(TraceQuery(service_name="complex-svc", attributes={"list": "[1]"})) == []


def special_tag_keys_read_span_fields(store: Store) -> None:
    rows = [span(0x31, 1, "special-svc", kind=SPAN_KIND_BY_NAME["client"], status_code=STATUS_ERROR,
                 scope_name="lib", scope_version="1.2",
                 resource_attributes=attrs({"service.name": "special-svc", "host": "h1"})),
            span(0x32, 1, "special-svc", span_attributes=attrs({"host": "h1"}))]
    write(store, spans_table(rows))
    one, two = [tid(0x31)], [tid(0x32)]
    cases: list[tuple[dict[str, str], list[bytes]]] = [
        ({"error": "true"}, one), ({"error": "false"}, two), ({"span.status": "error"}, one),
        ({"span.status": "unset"}, two), ({"span.kind": "client"}, one), ({"scope.name": "lib"}, one),
        ({"scope.version": "1.2"}, one), ({"resource.host": "h1"}, one),
    ]
    for tags, expected in cases:
        query = TraceQuery(service_name="special-svc", attributes=tags)
        eventually(lambda q=query, e=expected: _assert_equal(store.find_trace_ids(q), e))


def marks_are_event_names_or_attribute_keys(store: Store) -> None:
    """``TraceQuery.marks`` (Zipkin's bare annotationQuery words) hold on a span with an event so
    named or a span or resource attribute with that key; all of a query's marks on one span."""

    def event(name: str) -> dict[str, Any]:
        return {"time_unix_nano": BASE_NS, "name": name, "attributes": attrs({"ev.key": "x"}),
                "dropped_attributes_count": 0}

    rows = [span(0x91, 1, "mark-svc", events=[event("cache.miss")]),
            span(0x92, 1, "mark-svc", span_attributes=attrs({"retried": True})),
            span(0x93, 1, "mark-svc", resource_attributes=attrs({"service.name": "mark-svc", "zone": "z1"})),
            span(0x94, 1, "mark-svc", events=[event("cache.miss")], span_attributes=attrs({"retried": 1})),
            span(0x95, 1, "mark-svc", events=[event("cache.miss")]),
            span(0x95, 2, "mark-svc", span_attributes=attrs({"retried": "yes"}))]
    write(store, spans_table(rows))
    cases: list[tuple[tuple[str, ...], list[bytes]]] = [
        (("cache.miss",), [tid(0x91), tid(0x94), tid(0x95)]),
        (("retried",), [tid(0x92), tid(0x94), tid(0x95)]),
        (("zone",), [tid(0x93)]), (("cache.miss", "retried"), [tid(0x94)]),  # 0x95: not on one span
        (("ev.key",), []),  # an event's attribute key is not a mark
        (("nothing",), []),
    ]
    for marks, expected in cases:
        query = TraceQuery(service_name="mark-svc", marks=marks, search_depth=10)
        eventually(lambda q=query, e=expected: _assert_equal(sorted(store.find_trace_ids(q)), e))


def memory_store_fixture_round_trips(store: Store) -> None:
    write(store, decode_fixture(MEMORY_STORE / "otel_traces_01.json"))
    for number, hex_id in ((1, "00000000000000010000000000000000"), (2, "00000000000000020000000000000000")):
        trace_id = bytes.fromhex(hex_id)
        expected = decode_fixture(MEMORY_STORE / f"db_traces_0{number}.json")
        found = eventually(lambda t=trace_id: _nonempty(store.get_traces([t])))
        assert_same_spans(found, expected)
    assert store.get_services() == ["service-x"]
    kinds = [("test-general-conversion-2", "server"), ("test-general-conversion-3", "client"),
             ("test-general-conversion-4", "producer"), ("test-general-conversion-5", "consumer")]
    assert store.get_operations("service-x") == [Operation(n, SPAN_KIND_BY_NAME[k]) for n, k in kinds]


def memory_store_fixture_search_finds_only_the_first_trace(store: Store) -> None:
    write(store, decode_fixture(MEMORY_STORE / "otel_traces_01.json"))
    query = TraceQuery(service_name="service-x", operation_name="test-general-conversion-2", search_depth=5,
                       attributes={"peer.service": "service-y", "temperature": "72.5", "error": "true",
                                   "event-x": "event-y", "scope.attributes.2": "attribute-y"})
    first = bytes.fromhex("00000000000000010000000000000000")
    eventually(lambda: _assert_equal(store.find_trace_ids(query), [first]))
    assert_same_spans(store.find_traces(query), store.get_traces([first]))


def scan_spans_returns_the_window(store: Store) -> None:
    rows = [span(0x41, i, "scan-a" if i % 2 else "scan-b", f"op{i}", start=BASE_NS + i * 10**9)
            for i in range(1, 7)]
    write(store, spans_table(rows))
    columns = ["service_name", "name", "start_time_unix_nano", "duration_nano"]

    def names(table: pa.Table) -> list[str]:
        assert table.column_names == columns
        return sorted(table.column("name").to_pylist())

    window = (BASE_NS + 2 * 10**9, BASE_NS + 5 * 10**9)
    eventually(lambda: _assert_equal(names(store.scan_spans(columns, *window)), ["op2", "op3", "op4", "op5"]))
    assert names(store.scan_spans(columns, *window, services=["scan-a"])) == ["op3", "op5"]
    assert names(store.scan_spans(columns, *window, services=[])) == []


STORE_CASES: list[Callable[[Store], None]] = [
    get_services_lists_the_services_of_example_trace,
    get_operations_lists_names_with_kinds,
    get_traces_returns_the_whole_trace,
    get_traces_skips_a_missing_trace_silently,
    writes_become_visible_within_about_a_second,
    concurrent_writes_are_all_stored,
    a_rejected_write_stores_nothing,
    a_trace_written_in_several_requests_is_returned_whole,
    get_traces_returns_a_10008_span_trace,
    get_traces_preserves_duplicate_span_ids,
    get_traces_ignores_time_hints_outside_some_spans,
    trace_spanning_two_days_is_returned_whole,
    find_traces_without_service_name_searches_every_service,
    get_dependencies_counts_calls_between_services,
    search_depth_keeps_the_most_recent_traces_first,
    recency_is_the_latest_matching_span_start,
    filters_hold_on_one_and_the_same_span,
    tags_compare_as_strings_and_numbers,
    tags_match_bytes_arrays_and_maps_by_their_text,
    special_tag_keys_read_span_fields,
    marks_are_event_names_or_attribute_keys,
    memory_store_fixture_round_trips,
    memory_store_fixture_search_finds_only_the_first_trace,
    scan_spans_returns_the_window,
]


# -- small assertion helpers (usable inside ``eventually``) -----------------------------------------


def _assert_equal(actual: T, expected: T) -> T:
    assert actual == expected, f"{actual!r} != {expected!r}"
    return actual


def _nonempty(table: pa.Table) -> pa.Table:
    assert table.num_rows > 0, "no spans (yet)"
    return table


def _rows(table: pa.Table, count: int) -> pa.Table:
    assert table.num_rows == count, f"{table.num_rows} spans, expected {count}"
    return table


def names_of(cases: Iterable[Callable[..., Any]]) -> list[str]:
    return [case.__name__ for case in cases]
