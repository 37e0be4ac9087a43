"""Repeated and fragmentary span rows: exact duplicates once, Zipkin span parts merged."""

from __future__ import annotations

import json

import pyarrow as pa

from spanlake.collector.formats.zipkin_v2 import decode_zipkin_v2_json
from spanlake.query.span_merge import deduplicate_exact_spans, merge_zipkin_fragments
from spanlake.storage.attributes import attrs
from spanlake.storage.rows import spans_table
from tests.paths import ZIPKIN_LENS

YEAR_2000_NS = 946_684_800 * 10**9


def _lens(name: str) -> pa.Table:
    return decode_zipkin_v2_json((ZIPKIN_LENS / name).read_bytes())


def test_an_exact_duplicate_is_returned_once():
    table = _lens("yelp.json")
    doubled = pa.concat_tables([table, table.slice(0, 3)])
    assert deduplicate_exact_spans(doubled).to_pylist() == table.to_pylist()


def test_rows_that_share_an_id_but_differ_are_all_kept():
    row = {"trace_id": bytes(16), "span_id": b"\x01" * 8, "name": "a", "start_time_unix_nano": 5,
           "end_time_unix_nano": 9, "resource_attributes": attrs({"service.name": "s"})}
    table = spans_table([row, {**row, "name": "b"}])
    assert deduplicate_exact_spans(table) is table


def test_zipkin_fragments_are_merged_into_their_span():
    # smartthings-mobile-web-install: 84 spans arrive twice, once as a fragment with only name and
    # local endpoint (no kind, no timestamp); unmerged they are spans at 1970.
    table = _lens("smartthings-mobile-web-install.json")
    merged = merge_zipkin_fragments(table)
    assert (table.num_rows, merged.num_rows) == (1041, 957)
    assert min(merged["start_time_unix_nano"].to_pylist()) > YEAR_2000_NS
    fragment = bytes.fromhex("a0dc23f22c4fee3f")
    sides = [r for r in merged.to_pylist() if r["span_id"] == fragment]
    assert sorted((r["kind"], r["service_name"]) for r in sides) == [(2, "platformapi"), (3, "strongman")]


def test_fragment_parts_complete_each_other():
    body = json.dumps([
        {"traceId": "a", "id": "1", "name": "get", "localEndpoint": {"serviceName": "api"},
         "annotations": [{"timestamp": 1_600_000_000_000_100, "value": "wr"}]},
        {"traceId": "a", "id": "1", "kind": "SERVER", "timestamp": 1_600_000_000_000_000,
         "duration": 500, "localEndpoint": {"serviceName": "api", "ipv4": "10.0.0.1"},
         "tags": {"http.path": "/"}},
    ]).encode()
    (row,) = merge_zipkin_fragments(decode_zipkin_v2_json(body)).to_pylist()
    assert (row["name"], row["kind"], row["start_time_unix_nano"], row["duration_nano"]) == (
        "get", 2, 1_600_000_000_000_000_000, 500_000)
    assert [e["name"] for e in row["events"]] == ["wr"]
    assert {a["key"] for a in row["resource_attributes"]} == {"service.name", "net.host.ip"}
    assert {a["key"] for a in row["span_attributes"]} == {"http.path"}


def test_spans_of_one_id_with_different_starts_are_not_merged():
    # smartthings-oauth-authorization: five shared SERVER spans, one client ID, five starts.
    table = _lens("smartthings-oauth-authorization.json")
    assert merge_zipkin_fragments(table) is table


def test_otlp_spans_with_one_id_are_never_merged():
    row = {"trace_id": bytes(16), "span_id": b"\x01" * 8, "name": "a", "start_time_unix_nano": 0,
           "end_time_unix_nano": 0, "resource_attributes": attrs({"service.name": "s"})}
    table = spans_table([row, {**row, "name": "", "start_time_unix_nano": 5, "end_time_unix_nano": 6}])
    assert merge_zipkin_fragments(table) is table
