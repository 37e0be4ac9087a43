from __future__ import annotations

import threading

import pyarrow as pa
import pytest

from spanlake.storage.api import TraceQuery
from spanlake.storage.rows import spans_table
from tests.storage.memory import MemoryStore
from tests.storage.spans import span, tid


def test_write_is_visible_on_return() -> None:
    store = MemoryStore()
    store.write(spans_table([span(1, 1, "svc")]))
    assert store.get_traces([tid(1)]).num_rows == 1


def test_write_of_a_table_outside_the_schema_raises_and_stores_nothing() -> None:
    store = MemoryStore()
    with pytest.raises(ValueError, match="span schema"):
        store.write(pa.table({"trace_id": [b"x"]}))
    assert store.get_services() == []


def test_empty_store_answers_every_read() -> None:
    store = MemoryStore()
    assert store.get_traces([tid(1)]).num_rows == 0
    assert store.find_trace_ids(TraceQuery()) == []
    assert store.find_traces(TraceQuery()).num_rows == 0
    assert store.get_operations("svc") == []
    assert store.get_dependencies(2**62, 2**62) == []
    assert store.scan_spans(["name"], 0, 2**62).num_rows == 0


def test_search_depth_below_one_is_rejected() -> None:
    with pytest.raises(ValueError, match="search_depth"):
        MemoryStore().find_trace_ids(TraceQuery(search_depth=0))


def test_spans_without_a_service_name_are_stored_but_not_listed_as_a_service() -> None:
    store = MemoryStore()
    store.write(spans_table([{**span(1, 1, "svc"), "resource_attributes": []}]))
    assert store.get_services() == []
    assert store.get_traces([tid(1)]).num_rows == 1


def test_concurrent_writers_and_readers_lose_nothing() -> None:
    store = MemoryStore()
    errors: list[BaseException] = []

    def writer(base: int) -> None:
        for i in range(50):
            store.write(spans_table([span(base + i, 1, f"svc{base}")]))

    def reader() -> None:
        try:
            for _ in range(50):
                table = store.find_traces(TraceQuery(search_depth=1000))
                # every trace read is whole: each has exactly the one span written with it
                assert table.num_rows == len(set(table.column("trace_id").to_pylist()))
        except BaseException as exc:  # surfaced in the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(base,)) for base in (1000, 2000, 3000)]
    threads += [threading.Thread(target=reader) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(store.find_trace_ids(TraceQuery(search_depth=1000))) == 150
    assert store.get_services() == ["svc1000", "svc2000", "svc3000"]
