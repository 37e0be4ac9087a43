"""The per-segment attribute Bloom filter: it may only ever rule a segment out when it truly lacks the tag."""

from __future__ import annotations

from pathlib import Path

from spanlake.storage.api import TraceQuery
from spanlake.storage.attributes import attr
from spanlake.storage.bloom import Bloom, attribute_items, string_pair
from spanlake.storage.location import local_location
from spanlake.storage.rows import spans_table
from spanlake.storage.segments import list_segment_paths, open_segment
from spanlake.storage.store import open_store


def _span(i: int, **levels: list) -> dict:
    return {"trace_id": i.to_bytes(16, "big"), "span_id": (i + 1).to_bytes(8, "big"), "name": "op",
            "start_time_unix_nano": 10**18 + i, "end_time_unix_nano": 10**18 + i + 5, **levels}


def _table():
    event = {"time_unix_nano": 1, "name": "e", "attributes": [attr("in.event", "ev")],
             "dropped_attributes_count": 0}
    link = {"trace_id": b"\x09" * 16, "span_id": b"\x08" * 8, "trace_state": "", "flags": 0,
            "attributes": [attr("in.link", "lk")], "dropped_attributes_count": 0}
    return spans_table([
        _span(1, span_attributes=[attr("http.method", "GET"), attr("http.status_code", 200)],
              resource_attributes=[attr("service.name", "api")], events=[event]),
        _span(2, scope_attributes=[attr("in.scope", "sc")], links=[link]),
    ])


def test_every_string_attribute_of_every_level_is_in_the_filter() -> None:
    bloom = Bloom.build(attribute_items(_table()) or [])
    for key, value in [("http.method", "GET"), ("service.name", "api"), ("in.event", "ev"),
                       ("in.link", "lk"), ("in.scope", "sc")]:
        assert bloom.may_contain(string_pair(key, value)), key


def test_an_absent_value_is_ruled_out_but_typed_keys_never_are(tmp_path: Path) -> None:
    store = open_store(tmp_path, flush_interval_s=3600)
    store.write(_table())
    store.flush()
    loc = local_location(tmp_path)
    (segment,) = [open_segment(loc, p) for p in list_segment_paths(loc)]
    assert segment is not None and Path(segment.path).with_suffix(".bloom").exists()
    assert not segment.may_have_tag("http.method", "DELETE")
    assert segment.may_have_tag("http.method", "GET")
    assert segment.may_have_tag("http.status_code", "200")  # int: matched by value, never pruned
    assert segment.may_have_tag("http.status_code", "200.0")
    first = [(1).to_bytes(16, "big")]
    assert store.find_trace_ids(TraceQuery(attributes={"http.status_code": "200"})) == first
    assert store.find_trace_ids(TraceQuery(attributes={"http.method": "DELETE"})) == []
    assert store.find_trace_ids(TraceQuery(attributes={"resource.service.name": "api"})) == first
    store.close()


def test_a_false_positive_rate_near_one_percent() -> None:
    items = [string_pair("k", f"v{i}") for i in range(20_000)]
    bloom = Bloom.build(items)
    assert all(bloom.may_contain(i) for i in items[:2000])
    false_positives = sum(bloom.may_contain(string_pair("k", f"absent{i}")) for i in range(20_000))
    assert false_positives / 20_000 < 0.02
