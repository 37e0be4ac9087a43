"""Span table -> OTLP protobuf request and api_v3 OTLP/JSON."""

from __future__ import annotations

import json
import math
from typing import Any

from spanlake.query.formats.otlp import spans_to_otlp_json, spans_to_otlp_request
from spanlake.storage.attributes import attr, attrs
from spanlake.storage.rows import spans_table
from spanlake.storage.schema import STATUS_ERROR
from tests.paths import FIXTURES

SNAPSHOTS = FIXTURES / "jaeger" / "apiv3-http-snapshots"


def row(span: int, **fields: Any) -> dict[str, Any]:
    return {"trace_id": (1).to_bytes(16, "big"), "span_id": span.to_bytes(8, "big"), "name": f"op{span}",
            "start_time_unix_nano": 0, "end_time_unix_nano": 0, **fields}


def test_get_trace_matches_jaegers_api_v3_snapshot() -> None:
    table = spans_table([row(2, name="foobar", kind=2, status_code=STATUS_ERROR)])
    expected = json.loads((SNAPSHOTS / "GetTrace.json").read_text())["result"]
    assert spans_to_otlp_json(table) == expected


def test_json_uses_lower_hex_string_int64_and_numeric_enums() -> None:
    table = spans_table([row(
        0xAB, parent_span_id=bytes.fromhex("00000000000000CD"), kind=3,
        start_time_unix_nano=1_485_449_191_639_875_000, end_time_unix_nano=1_485_449_191_639_876_000,
        span_attributes=attrs({"i": 2**63 - 1, "d": math.nan, "inf": -math.inf, "b": b"\x00\x01",
                               "e": None, "a": [1, "x"], "m": {"k": True}}),
        events=[{"time_unix_nano": 5, "name": "ev", "attributes": [], "dropped_attributes_count": 0}],
        trace_state="k=v", flags=1,
    )])
    [span] = spans_to_otlp_json(table)["resourceSpans"][0]["scopeSpans"][0]["spans"]
    assert span["traceId"] == "00000000000000000000000000000001"
    assert (span["spanId"], span["parentSpanId"]) == ("00000000000000ab", "00000000000000cd")
    assert (span["kind"], span["flags"], span["traceState"]) == (3, 1, "k=v")
    assert span["startTimeUnixNano"] == "1485449191639875000"
    assert span["events"] == [{"timeUnixNano": "5", "name": "ev"}]
    assert span["status"] == {}
    values = {a["key"]: a["value"] for a in span["attributes"]}
    assert values == {
        "i": {"intValue": "9223372036854775807"}, "d": {"doubleValue": "NaN"},
        "inf": {"doubleValue": "-Infinity"}, "b": {"bytesValue": "AAE="}, "e": {},
        "a": {"arrayValue": {"values": [{"intValue": "1"}, {"stringValue": "x"}]}},
        "m": {"kvlistValue": {"values": [{"key": "k", "value": {"boolValue": True}}]}},
    }
    for empty in ("droppedAttributesCount", "links", "droppedEventsCount", "droppedLinksCount"):
        assert empty not in span


def test_rows_are_regrouped_by_resource_then_scope_keeping_row_order() -> None:
    a = [attr("service.name", "a")]
    b = [attr("service.name", "b")]
    table = spans_table([
        row(1, resource_attributes=a, scope_name="s1"),
        row(2, resource_attributes=b, scope_name="s1"),
        row(3, resource_attributes=a, scope_name="s2"),
        row(4, resource_attributes=a, scope_name="s1"),
        row(5, resource_attributes=b, scope_name="s1"),
    ])
    request = spans_to_otlp_request(table)
    layout = [
        (rs.resource.attributes[0].value.string_value,
         [(ss.scope.name, [int.from_bytes(s.span_id, "big") for s in ss.spans]) for ss in rs.scope_spans])
        for rs in request.resource_spans
    ]
    assert layout == [("a", [("s1", [1, 4]), ("s2", [3])]), ("b", [("s1", [2, 5])])]
    # The JSON form groups the same way.
    resource_spans = spans_to_otlp_json(table)["resourceSpans"]
    assert [len(rs["scopeSpans"]) for rs in resource_spans] == [2, 1]


def test_resources_differing_only_in_attribute_type_stay_apart() -> None:
    table = spans_table([
        row(1, resource_attributes=[attr("port", 1)]),
        row(2, resource_attributes=[attr("port", "1")]),
        row(3, resource_attributes=[attr("port", 1.0)]),
    ])
    assert len(spans_to_otlp_request(table).resource_spans) == 3


def test_protobuf_carries_every_span_field() -> None:
    link = {"trace_id": b"\x07" * 16, "span_id": b"\x08" * 8, "trace_state": "t",
            "attributes": attrs({"l": 1}), "dropped_attributes_count": 1, "flags": 256}
    table = spans_table([row(
        9, status_code=1, status_message="fine", dropped_attributes_count=3, dropped_events_count=4,
        dropped_links_count=5, links=[link], resource_schema_url="r", scope_version="v",
        scope_schema_url="s", resource_dropped_attributes_count=6, scope_dropped_attributes_count=7,
    )])
    rs = spans_to_otlp_request(table).resource_spans[0]
    ss = rs.scope_spans[0]
    span = ss.spans[0]
    assert (rs.schema_url, rs.resource.dropped_attributes_count) == ("r", 6)
    assert (ss.schema_url, ss.scope.version, ss.scope.dropped_attributes_count) == ("s", "v", 7)
    assert (span.status.code, span.status.message) == (1, "fine")
    assert (span.dropped_attributes_count, span.dropped_events_count, span.dropped_links_count) == (3, 4, 5)
    out_link = span.links[0]
    assert (out_link.flags, out_link.trace_state, out_link.dropped_attributes_count) == (256, "t", 1)
    assert span.links[0].attributes[0].value.int_value == 1
    assert span.parent_span_id == b""
