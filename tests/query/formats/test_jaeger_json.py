from __future__ import annotations

import json
import os
from pathlib import Path

from spanlake.collector.formats.otlp import decode_otlp_json
from spanlake.query.formats.jaeger_json import spans_to_jaeger_traces
from spanlake.storage.attributes import attr, attrs
from spanlake.storage.rows import spans_table
from tests.paths import FIXTURES

GOLDEN = Path(__file__).parent / "golden"
MEMORY_FIXTURE = FIXTURES / "jaeger" / "memory-store" / "otel_traces_01.json"

TRACE_64 = bytes(8) + bytes.fromhex("52969a8955571a3f")
TRACE_128 = bytes.fromhex("83a9efd15c1c98a977e0711cc93ee28b")
T0 = 1_706_678_909_209_712_345  # ns: the sub-microsecond part must be dropped, not rounded


def _span(**row):
    base = {
        "trace_id": TRACE_64,
        "name": "op",
        "start_time_unix_nano": T0,
        "end_time_unix_nano": T0 + 123_000,
        "resource_attributes": attrs({"service.name": "api"}),
    }
    return {**base, **row}


def _one(**row):
    [trace] = spans_to_jaeger_traces(spans_table([_span(span_id=bytes.fromhex("0000000000000001"), **row)]))
    return trace["spans"][0], trace


def _tags(span):
    return {t["key"]: (t["type"], t["value"]) for t in span["tags"]}


def rich_trace():
    """Every mapping rule in one trace: two resources (one repeated), all value types, status, kind,
    trace state, scope, events, links, flags and a Jaeger warning."""
    root, child, other = (
        bytes.fromhex(h) for h in ("a1b2c3d4e5f60718", "00f067aa0ba902b7", "0102030405060708")
    )
    resource = attrs({"service.name": "frontend", "host.name": "h1", "pid": 42})
    return spans_table(
        [
            {
                "trace_id": TRACE_128,
                "span_id": root,
                "name": "GET /api",
                "kind": 2,
                "flags": 0x101,
                "start_time_unix_nano": T0,
                "end_time_unix_nano": T0 + 1_500_000,
                "resource_attributes": resource,
                "scope_name": "io.opentelemetry.http",
                "scope_version": "1.2.3",
                "trace_state": "rojo=00f067aa0ba902b7",
                "span_attributes": attrs(
                    {
                        "http.status_code": 200,
                        "big": 2**60,
                        "ratio": 0.25,
                        "ok": True,
                        "blob": b"\x00\xff",
                        "list": ["a", 1],
                        "map": {"k": "v"},
                    }
                ),
                "events": [
                    {
                        "time_unix_nano": T0 + 500_000,
                        "name": "cache miss",
                        "attributes": attrs({"key": "u1"}),
                        "dropped_attributes_count": 0,
                    },
                    {
                        "time_unix_nano": T0 + 600_000,
                        "name": "ignored",
                        "attributes": attrs({"event": "explicit"}),
                        "dropped_attributes_count": 0,
                    },
                ],
            },
            {
                "trace_id": TRACE_128,
                "span_id": child,
                "parent_span_id": root,
                "name": "SELECT",
                "kind": 3,
                "start_time_unix_nano": T0 + 100_000,
                "end_time_unix_nano": T0 + 900_000,
                "status_code": 2,
                "status_message": "timeout",
                "resource_attributes": attrs({"service.name": "db"}),
                "span_attributes": [attr("@jaeger@warnings", ["clock skew adjusted"])],
                "links": [
                    {
                        "trace_id": TRACE_128,
                        "span_id": root,
                        "trace_state": "",
                        "flags": 0,
                        "attributes": attrs({"opentracing.ref_type": "follows_from"}),
                        "dropped_attributes_count": 0,
                    },
                    {
                        "trace_id": TRACE_64,
                        "span_id": other,
                        "trace_state": "",
                        "flags": 0,
                        "attributes": [],
                        "dropped_attributes_count": 0,
                    },
                ],
            },
            {
                "trace_id": TRACE_128,
                "span_id": other,
                "parent_span_id": root,
                "name": "render",
                "kind": 1,
                "start_time_unix_nano": T0 + 950_000,
                "end_time_unix_nano": T0 + 1_000_000,
                "status_code": 1,
                "resource_attributes": resource,
            },
        ]
    )


def test_rich_trace_matches_golden_file():
    actual = spans_to_jaeger_traces(rich_trace())
    path = GOLDEN / "rich_trace.json"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(json.dumps(actual, indent=2) + "\n")
    assert actual == json.loads(path.read_text())


def test_memory_store_fixture_matches_golden_file():
    # Jaeger's memory-store OTLP fixture: scopes with versions, links (one CHILD_OF into another
    # trace), events with and without a name, binary, int and double attributes, trace state, flags.
    actual = spans_to_jaeger_traces(decode_otlp_json(MEMORY_FIXTURE.read_bytes()).spans)
    path = GOLDEN / "memory_store_traces.json"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(json.dumps(actual, indent=2) + "\n")
    assert actual == json.loads(path.read_text())


def test_upstream_otlp2jaeger_example_maps_as_jaeger_does():
    # jaeger cmd/jaeger/internal/extension/jaegerquery/internal/fixture/otlp2jaeger-{in,out}.json:
    # a telemetrygen server span with scope "telemetrygen", sent twice.
    row = {
        "trace_id": TRACE_128,
        "span_id": bytes.fromhex("e127af99e3b3e074"),
        "parent_span_id": bytes.fromhex("909541b92cf05311"),
        "name": "okey-dokey-0",
        "kind": 2,
        "start_time_unix_nano": 1706678909209712000,
        "end_time_unix_nano": 1706678909209835000,
        "resource_attributes": attrs({"service.name": "telemetrygen"}),
        "scope_name": "telemetrygen",
        "resource_schema_url": "https://opentelemetry.io/schemas/1.4.0",
        "span_attributes": attrs({"net.peer.ip": "1.2.3.4", "peer.service": "telemetrygen-client"}),
    }
    expected_span = {
        "traceID": "83a9efd15c1c98a977e0711cc93ee28b",
        "spanID": "e127af99e3b3e074",
        "operationName": "okey-dokey-0",
        "references": [
            {
                "refType": "CHILD_OF",
                "traceID": "83a9efd15c1c98a977e0711cc93ee28b",
                "spanID": "909541b92cf05311",
            }
        ],
        "startTime": 1706678909209712,
        "duration": 123,
        "tags": [
            {"key": "otel.scope.name", "type": "string", "value": "telemetrygen"},
            {"key": "net.peer.ip", "type": "string", "value": "1.2.3.4"},
            {"key": "peer.service", "type": "string", "value": "telemetrygen-client"},
            {"key": "span.kind", "type": "string", "value": "server"},
        ],
        "logs": [],
        "processID": "p1",
        "warnings": None,
    }
    assert spans_to_jaeger_traces(spans_table([row, row])) == [
        {
            "traceID": "83a9efd15c1c98a977e0711cc93ee28b",
            "spans": [expected_span, expected_span],
            "processes": {"p1": {"serviceName": "telemetrygen", "tags": []}},
            "warnings": None,
        }
    ]


def test_trace_id_with_zero_high_half_prints_as_16_hex_chars():
    span, trace = _one()
    assert trace["traceID"] == span["traceID"] == "52969a8955571a3f"


def test_identical_processes_share_an_id_in_span_order():
    rows = [
        _span(span_id=bytes([0] * 7 + [i]), resource_attributes=attrs(res))
        for i, res in enumerate(
            [
                {"service.name": "b"},
                {"service.name": "a"},
                {"service.name": "b"},
                {"service.name": "b", "zone": "x"},
            ],
            1,
        )
    ]
    [trace] = spans_to_jaeger_traces(spans_table(rows))
    assert [s["processID"] for s in trace["spans"]] == ["p1", "p2", "p1", "p3"]
    assert trace["processes"]["p3"] == {
        "serviceName": "b",
        "tags": [{"key": "zone", "type": "string", "value": "x"}],
    }


def test_resource_without_service_name_gets_jaeger_placeholder():
    span, trace = _one(resource_attributes=[])
    assert trace["processes"][span["processID"]]["serviceName"] == "OTLPResourceNoServiceName"


def test_int64_beyond_javascript_safe_range_is_a_string():
    span, _ = _one(span_attributes=attrs({"safe": 2**53 - 1, "unsafe": 2**53, "negative": -(2**62)}))
    assert _tags(span) == {
        "safe": ("int64", 2**53 - 1),
        "unsafe": ("int64", str(2**53)),
        "negative": ("int64", str(-(2**62))),
    }


def test_binary_is_base64_and_containers_are_json_text():
    span, _ = _one(span_attributes=attrs({"b": b"hi", "arr": [1, "x", True], "kv": {"a": 1.5}}))
    assert _tags(span) == {
        "b": ("binary", "aGk="),
        "arr": ("string", '[1,"x",true]'),
        "kv": ("string", '{"a":1.5}'),
    }


def test_error_status_adds_bool_error_tag_after_status_code():
    span, _ = _one(status_code=2, status_message="boom", kind=3)
    assert span["tags"][-4:] == [
        {"key": "span.kind", "type": "string", "value": "client"},
        {"key": "otel.status_code", "type": "string", "value": "ERROR"},
        {"key": "error", "type": "bool", "value": True},
        {"key": "otel.status_description", "type": "string", "value": "boom"},
    ]


def test_unspecified_kind_and_unset_status_add_no_tags():
    span, _ = _one()
    assert span["tags"] == []
    assert span["references"] == [] and span["logs"] == [] and "flags" not in span


def test_event_name_becomes_leading_event_field():
    event = {
        "time_unix_nano": T0 + 2_000,
        "name": "retry",
        "attributes": attrs({"n": 2}),
        "dropped_attributes_count": 0,
    }
    span, _ = _one(events=[event])
    assert span["logs"] == [
        {
            "timestamp": (T0 + 2_000) // 1000,
            "fields": [
                {"key": "event", "type": "string", "value": "retry"},
                {"key": "n", "type": "int64", "value": 2},
            ],
        }
    ]


def test_link_marked_child_of_becomes_child_of_reference():
    link = {
        "trace_id": TRACE_64,
        "span_id": bytes(7) + b"\x09",
        "trace_state": "",
        "flags": 0,
        "attributes": attrs({"opentracing.ref_type": "child_of"}),
        "dropped_attributes_count": 0,
    }
    span, _ = _one(links=[link])
    assert span["references"] == [
        {"refType": "CHILD_OF", "traceID": "52969a8955571a3f", "spanID": "0000000000000009"}
    ]


def test_times_are_truncated_to_microseconds():
    span, _ = _one(start_time_unix_nano=1_999, end_time_unix_nano=3_998)
    assert (span["startTime"], span["duration"]) == (1, 1)


def test_traces_come_out_in_first_appearance_order():
    rows = [_span(trace_id=bytes(15) + bytes([n]), span_id=bytes(7) + bytes([n])) for n in (3, 1, 3, 2)]
    assert [t["traceID"] for t in spans_to_jaeger_traces(spans_table(rows))] == [
        "0000000000000003",
        "0000000000000001",
        "0000000000000002",
    ]
