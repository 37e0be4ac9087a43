"""OTLP (protobuf and OTLP/JSON) -> span table."""

from __future__ import annotations

import base64
import json
import math
import random
from typing import Any

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1 import common_pb2

from spanlake.collector.formats.errors import FormatError
from spanlake.collector.formats.otlp import decode_otlp_json, decode_otlp_protobuf, otlp_request_to_spans
from spanlake.query.formats.otlp import spans_to_otlp_json, spans_to_otlp_request
from spanlake.storage.schema import SPAN_SCHEMA, ValueType
from tests.otlp_compare import canonical, otlp_json_to_request
from tests.paths import FIXTURES, JAEGER_SUITE

EXAMPLE = FIXTURES / "opentelemetry-proto" / "examples" / "trace.json"
SUITE_TRACES = sorted((JAEGER_SUITE / "traces").glob("*.json"))
TRACE_ID, SPAN_ID = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174"


def request_json(*spans: dict[str, Any], resource: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"resourceSpans": [{
        "resource": resource or {"attributes": [{"key": "service.name",
                                                 "value": {"stringValue": "svc"}}]},
        "scopeSpans": [{"scope": {"name": "lib"}, "spans": list(spans)}],
    }]}


def span_json(**fields: Any) -> dict[str, Any]:
    return {"traceId": TRACE_ID, "spanId": SPAN_ID, "name": "op", "startTimeUnixNano": "10",
            "endTimeUnixNano": "25", **fields}


# ---- mapping ---------------------------------------------------------------------------------------


def test_official_example_with_upper_case_ids_maps_every_field() -> None:
    result = decode_otlp_json(EXAMPLE.read_bytes())
    assert result.rejected == 0 and result.message == ""
    assert result.spans.schema == SPAN_SCHEMA
    [row] = result.spans.to_pylist()
    assert row["trace_id"] == bytes.fromhex(TRACE_ID)
    assert row["span_id"] == bytes.fromhex("EEE19B7EC3C1B174")
    assert row["parent_span_id"] == bytes.fromhex("EEE19B7EC3C1B173")
    assert (row["name"], row["kind"], row["service_name"]) == ("I'm a server span", 2, "my.service")
    assert row["duration_nano"] == 1_000_000_000
    assert (row["scope_name"], row["scope_version"]) == ("my.library", "1.0.0")
    assert row["scope_attributes"][0]["str"] == "some scope attribute"
    assert row["span_attributes"][0]["key"] == "my.span.attr"


def test_root_span_has_null_parent_and_missing_service_name_is_empty() -> None:
    body = request_json(span_json(), span_json(spanId="0000000000000009", parentSpanId=""),
                        resource={"attributes": [{"key": "service.name", "value": {"intValue": 3}}]})
    rows = decode_otlp_json(json.dumps(body)).spans.to_pylist()
    assert [r["parent_span_id"] for r in rows] == [None, None]
    assert [r["service_name"] for r in rows] == ["", ""]


def test_attribute_types_are_kept() -> None:
    attrs = [
        {"key": "s", "value": {"stringValue": "x"}},
        {"key": "i", "value": {"intValue": "-9223372036854775808"}},
        {"key": "i2", "value": {"intValue": 42}},
        {"key": "d", "value": {"doubleValue": 1.5}},
        {"key": "b", "value": {"boolValue": False}},
        {"key": "y", "value": {"bytesValue": "AAAwOQ=="}},
        {"key": "a", "value": {"arrayValue": {"values": [{"intValue": 1}, {"stringValue": "z"}]}}},
        {"key": "m", "value": {"kvlistValue": {"values": [{"key": "k", "value": {"boolValue": True}},
                                                          {"key": "k", "value": {}}]}}},
        {"key": "e", "value": {}},
    ]
    [row] = decode_otlp_json(json.dumps(request_json(span_json(attributes=attrs)))).spans.to_pylist()
    got = {a["key"]: a for a in row["span_attributes"]}
    assert [a["key"] for a in row["span_attributes"]] == [a["key"] for a in attrs]
    assert got["i"]["type"] == ValueType.INT and got["i"]["int"] == -(2**63)
    assert got["i2"]["int"] == 42
    assert got["d"]["type"] == ValueType.DOUBLE and got["d"]["double"] == 1.5
    assert got["b"]["type"] == ValueType.BOOL and got["b"]["bool"] is False
    assert got["y"]["bytes"] == b"\x00\x000\x39"
    assert json.loads(got["a"]["str"]) == {"values": [{"intValue": "1"}, {"stringValue": "z"}]}
    # Duplicate keys and their order survive inside a kvlist.
    assert json.loads(got["m"]["str"]) == {"values": [{"key": "k", "value": {"boolValue": True}},
                                                      {"key": "k", "value": {}}]}
    assert got["e"]["type"] == ValueType.EMPTY


def test_json_accepts_proto_field_names_enum_names_and_numeric_int64() -> None:
    span = {"trace_id": TRACE_ID, "span_id": SPAN_ID, "parent_span_id": "eee19b7ec3c1b173",
            "name": "op", "kind": "SPAN_KIND_CLIENT", "start_time_unix_nano": 10,
            "end_time_unix_nano": "25", "status": {"code": "STATUS_CODE_ERROR", "message": "boom"},
            "dropped_attributes_count": 2, "unknownField": {"ignored": True}}
    body = {"resource_spans": [{"scope_spans": [{"spans": [span]}], "schema_url": "https://s"}]}
    [row] = decode_otlp_json(json.dumps(body)).spans.to_pylist()
    assert (row["kind"], row["status_code"], row["status_message"]) == (3, 2, "boom")
    assert (row["start_time_unix_nano"], row["duration_nano"]) == (10, 15)
    assert row["dropped_attributes_count"] == 2
    assert row["resource_schema_url"] == "https://s"


def test_mixed_case_hex_ids_are_accepted() -> None:
    body = request_json(span_json(traceId="5B8eFFF798038103d269B633813fc60C", spanId="EeE19b7ec3c1B174"))
    [row] = decode_otlp_json(json.dumps(body)).spans.to_pylist()
    assert row["trace_id"].hex() == TRACE_ID and row["span_id"].hex() == SPAN_ID


def test_protobuf_and_json_paths_give_the_same_table() -> None:
    request = otlp_json_to_request(json.loads(EXAMPLE.read_text()))
    from_pb = decode_otlp_protobuf(request.SerializeToString()).spans
    assert from_pb.equals(decode_otlp_json(EXAMPLE.read_bytes()).spans)
    assert otlp_request_to_spans(request).spans.equals(from_pb)


# ---- round trips -----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [EXAMPLE, *SUITE_TRACES], ids=lambda p: p.name)
def test_json_round_trip_is_identical_with_types(path: Any) -> None:
    original = json.loads(path.read_text())
    table = decode_otlp_json(path.read_bytes()).spans
    assert table.num_rows > 0
    expected = canonical(otlp_json_to_request(original))
    assert canonical(spans_to_otlp_request(table)) == expected
    assert canonical(otlp_json_to_request(spans_to_otlp_json(table))) == expected


def test_all_32_jaeger_suite_traces_are_covered() -> None:
    assert len(SUITE_TRACES) == 32


@pytest.mark.parametrize("path", [EXAMPLE, *SUITE_TRACES], ids=lambda p: p.name)
def test_protobuf_round_trip_is_identical(path: Any) -> None:
    request = otlp_json_to_request(json.loads(path.read_text()))
    result = decode_otlp_protobuf(request.SerializeToString())
    assert canonical(spans_to_otlp_request(result.spans)) == canonical(request)


# ---- invalid input ---------------------------------------------------------------------------------


def test_truncated_protobuf_is_a_format_error() -> None:
    body = otlp_json_to_request(json.loads(EXAMPLE.read_text())).SerializeToString()
    with pytest.raises(FormatError, match="protobuf"):
        decode_otlp_protobuf(body[: len(body) - 7])


def test_garbage_inside_an_attribute_is_a_format_error() -> None:
    # Field 9 (attributes) holding bytes that are not a KeyValue: 0xff starts an endless varint.
    with pytest.raises(FormatError, match="KeyValue"):
        decode_otlp_protobuf(_request_with_span(_SPAN_IDS + b"\x4a\x02\xff\xff"))


def test_invalid_utf8_in_an_attribute_is_a_format_error() -> None:
    kv = common_pb2.KeyValue(key="k")
    kv.value.string_value = "ok"
    record = kv.SerializeToString().replace(b"ok", b"\xff\xfe")
    span = _SPAN_IDS + b"\x4a" + bytes([len(record)]) + record
    with pytest.raises(FormatError, match="UTF-8"):
        decode_otlp_protobuf(_request_with_span(span))


# Span fields 1 and 2: a valid trace ID and span ID.
_SPAN_IDS = b"\x0a\x10" + b"\x01" * 16 + b"\x12\x08" + b"\x02" * 8


def _request_with_span(span: bytes) -> bytes:
    """ExportTraceServiceRequest{resource_spans{scope_spans{spans: <span>}}} by hand."""
    scope_spans = b"\x12" + _varint(len(span)) + span
    resource_spans = b"\x12" + _varint(len(scope_spans)) + scope_spans
    return b"\x0a" + _varint(len(resource_spans)) + resource_spans


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


@pytest.mark.parametrize("body", [b"{not json", b"\xff\xfe", b""])
def test_invalid_json_is_a_format_error(body: bytes) -> None:
    with pytest.raises(FormatError, match="not valid JSON"):
        decode_otlp_json(body)


@pytest.mark.parametrize(("body", "message"), [
    ([], "expected a JSON object"),
    ({"resourceSpans": {}}, r"^resourceSpans: expected an array"),
    ({"resourceSpans": [{"scopeSpans": [{"spans": ["x"]}]}]},
     r"^resourceSpans\[0\]\.scopeSpans\[0\]\.spans\[0\]: expected an object"),
    (request_json(span_json(), span_json(attributes=[{"key": "k", "value": {"intValue": "1.5"}}])),
     r"^resourceSpans\[0\]\.scopeSpans\[0\]\.spans\[1\]\.attributes\[0\]\.value\.intValue"),
    (request_json(span_json(kind="SERVER")), r"spans\[0\]\.kind: expected one of"),
    (request_json(span_json(startTimeUnixNano="soon")), r"spans\[0\]\.startTimeUnixNano"),
    (request_json(span_json(attributes={"k": "v"})), r"spans\[0\]\.attributes: expected an array"),
    (request_json(span_json(events=[{"name": 3}])), r"spans\[0\]\.events\[0\]\.name: expected a string"),
])
def test_wrong_json_shape_names_the_field(body: Any, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        decode_otlp_json(json.dumps(body))


@pytest.mark.parametrize(("field", "value", "size"), [
    ("traceId", "5b8efff798038103d269b633813fc6zz", 32),
    ("traceId", "5b8efff798038103d269b633813fc6", 32),
    ("spanId", "eee19b7e c3c1b17", 16),
    ("parentSpanId", "abc", 16),
])
def test_bad_hex_id_is_a_format_error(field: str, value: str, size: int) -> None:
    body = request_json(span_json(), span_json(**{field: value}))
    with pytest.raises(FormatError,
                       match=rf"^resourceSpans\[0\]\.scopeSpans\[0\]\.spans\[1\]\.{field}: "
                             rf"not {size} hex characters"):
        decode_otlp_json(json.dumps(body))


def test_json_spans_with_empty_or_zero_ids_are_rejected_and_counted() -> None:
    body = request_json(
        span_json(traceId=""),
        span_json(spanId=""),
        span_json(traceId="0" * 32),
        span_json(spanId="0" * 16),
        span_json(name="kept"),
    )
    result = decode_otlp_json(json.dumps(body))
    assert result.rejected == 4
    assert [r["name"] for r in result.spans.to_pylist()] == ["kept"]
    assert "2 with an invalid trace ID" in result.message
    assert "2 with an invalid span ID" in result.message


def test_protobuf_spans_with_invalid_ids_are_rejected_and_the_rest_stored() -> None:
    request = ExportTraceServiceRequest()
    spans = request.resource_spans.add().scope_spans.add().spans
    good = dict(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="kept")
    spans.add(**{**good, "trace_id": b""})
    spans.add(**{**good, "span_id": b""})
    spans.add(**{**good, "trace_id": b"\x01" * 8})
    spans.add(**{**good, "parent_span_id": b"\x03" * 5})
    spans.add(**{**good, "span_id": bytes(8)})
    spans.add(**good).links.add(trace_id=b"\x01" * 3, span_id=b"\x02" * 8)
    spans.add(**good)
    spans.add(**{**good, "parent_span_id": bytes(8), "name": "zero parent"})
    result = decode_otlp_protobuf(request.SerializeToString())
    assert result.rejected == 6
    assert [r["name"] for r in result.spans.to_pylist()] == ["kept", "zero parent"]
    assert [r["parent_span_id"] for r in result.spans.to_pylist()] == [None, None]
    assert result.message.startswith("6 span(s) rejected")


def test_timestamps_past_int64_decode_as_negative_for_admission_to_reject_per_span() -> None:
    # Issue 14: one such span used to fail the whole request; collector/admission.py rejects it alone.
    result = decode_otlp_json(json.dumps(request_json(span_json(startTimeUnixNano=str(2**63)))))
    assert result.spans.column("start_time_unix_nano").to_pylist() == [-1]


def test_out_of_range_numbers_are_format_errors() -> None:
    with pytest.raises(FormatError, match="startTimeUnixNano"):
        decode_otlp_json(json.dumps(request_json(span_json(startTimeUnixNano=str(2**64)))))
    with pytest.raises(FormatError, match="flags"):
        decode_otlp_json(json.dumps(request_json(span_json(flags=2**32))))
    request = ExportTraceServiceRequest()
    request.resource_spans.add().scope_spans.add().spans.add(
        trace_id=b"\x01" * 16, span_id=b"\x02" * 8, kind=300)
    with pytest.raises(FormatError, match="kind"):
        decode_otlp_protobuf(request.SerializeToString())


# ---- generated spans -------------------------------------------------------------------------------


def random_value(rnd: random.Random, depth: int = 0) -> common_pb2.AnyValue:
    value = common_pb2.AnyValue()
    choice = rnd.randrange(9 if depth < 2 else 7)
    if choice == 0:
        value.string_value = rnd.choice(["", "ascii", "ünïcødé ✓ 🚀", "x" * rnd.randrange(100, 300)])
    elif choice == 1:
        value.int_value = rnd.choice([0, -1, 1, 127, 128, 2**63 - 1, -(2**63), rnd.getrandbits(40)])
    elif choice == 2:
        value.double_value = rnd.choice([0.0, -0.5, 1e308, math.inf, -math.inf, math.nan, 5e-324])
    elif choice == 3:
        value.bool_value = rnd.random() < 0.5
    elif choice == 4:
        value.bytes_value = rnd.randbytes(rnd.randrange(0, 200))
    elif choice == 5:
        pass  # an empty AnyValue
    elif choice == 6:
        value.string_value = "é" * rnd.randrange(1, 3)
    elif choice == 7:
        value.array_value.SetInParent()
        for _ in range(rnd.randrange(0, 4)):
            value.array_value.values.add().CopyFrom(random_value(rnd, depth + 1))
    else:
        value.kvlist_value.SetInParent()
        for _ in range(rnd.randrange(0, 4)):
            kv = value.kvlist_value.values.add(key=rnd.choice(["a", "a", "ключ", ""]))
            kv.value.CopyFrom(random_value(rnd, depth + 1))
    return value


def random_attributes(rnd: random.Random, target: Any) -> None:
    for i in range(rnd.randrange(0, 8)):
        key = rnd.choice([f"k{i}", "dup", "ü" * 70, "k" * 200])
        target.add(key=key).value.CopyFrom(random_value(rnd))


def random_request(seed: int) -> ExportTraceServiceRequest:
    rnd = random.Random(seed)
    request = ExportTraceServiceRequest()
    for _ in range(rnd.randrange(1, 3)):
        rs = request.resource_spans.add(schema_url=rnd.choice(["", "https://opentelemetry.io/s/1"]))
        random_attributes(rnd, rs.resource.attributes)
        rs.resource.dropped_attributes_count = rnd.choice([0, 4])
        for _ in range(rnd.randrange(1, 3)):
            ss = rs.scope_spans.add(schema_url=rnd.choice(["", "s"]))
            ss.scope.name, ss.scope.version = rnd.choice(["", "lib"]), rnd.choice(["", "1"])
            random_attributes(rnd, ss.scope.attributes)
            for _ in range(rnd.randrange(0, 6)):
                random_span(rnd, ss.spans.add())
    return request


def random_span(rnd: random.Random, span: Any) -> None:
    span.trace_id, span.span_id = rnd.randbytes(16), rnd.randbytes(8)
    span.parent_span_id = rnd.choice([b"", rnd.randbytes(8)])
    span.trace_state = rnd.choice(["", "rojo=00f067aa0ba902b7"])
    span.flags = rnd.choice([0, 1, 0x301, 2**32 - 1])
    span.name = rnd.choice(["", "GET /", "ö" * 150])
    span.kind = rnd.randrange(6)
    span.start_time_unix_nano = rnd.randrange(2**62)
    span.end_time_unix_nano = span.start_time_unix_nano + rnd.randrange(10**9)
    random_attributes(rnd, span.attributes)
    span.dropped_attributes_count, span.dropped_events_count = rnd.randrange(3), rnd.randrange(3)
    span.dropped_links_count = rnd.randrange(3)
    for _ in range(rnd.randrange(3)):
        event = span.events.add(time_unix_nano=rnd.randrange(2**62), name=rnd.choice(["", "e"]))
        random_attributes(rnd, event.attributes)
        event.dropped_attributes_count = rnd.randrange(2)
    for _ in range(rnd.randrange(3)):
        link = span.links.add(trace_id=rnd.randbytes(16), span_id=rnd.randbytes(8),
                              trace_state=rnd.choice(["", "a=b"]), flags=rnd.randrange(3))
        random_attributes(rnd, link.attributes)
    span.status.code, span.status.message = rnd.randrange(3), rnd.choice(["", "bad ✗"])


def to_otlp_json(request: ExportTraceServiceRequest) -> dict[str, Any]:
    """protobuf's JSON with IDs rewritten as hex: what an OTLP/JSON client sends."""
    obj: dict[str, Any] = json_format.MessageToDict(request)
    for rs in obj.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for span in ss.get("spans", []):
                for item in [span, *span.get("links", [])]:
                    for field in ("traceId", "spanId", "parentSpanId"):
                        if field in item:
                            item[field] = base64.b64decode(item[field]).hex().upper()
    return obj


@pytest.mark.parametrize("seed", range(25))
def test_generated_requests_round_trip_through_both_encodings(seed: int) -> None:
    request = random_request(seed)
    from_pb = decode_otlp_protobuf(request.SerializeToString())
    assert from_pb.rejected == 0
    assert canonical(spans_to_otlp_request(from_pb.spans)) == canonical(request)
    # OTLP/JSON carries everything too, NaN and the infinities as strings included.
    from_json = decode_otlp_json(json.dumps(to_otlp_json(request)))
    assert canonical(spans_to_otlp_request(from_json.spans)) == canonical(request)
    assert canonical(otlp_json_to_request(spans_to_otlp_json(from_pb.spans))) == canonical(request)


# ---- the vectorized protobuf reader against upb on unusual but valid wire data ----------------------


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def test_unknown_fields_repeats_and_field_order_read_as_upb_reads_them() -> None:
    from opentelemetry.proto.trace.v1.trace_pb2 import Span

    span = (
        _field(5, b"first name")
        + _varint(100 << 3 | 0) + _varint(2**40)  # unknown varint field
        + _field(101, b"unknown bytes")
        + b"\x39" + (7).to_bytes(8, "little")  # start_time_unix_nano = 7, overwritten below
        + b"\x39" + (5).to_bytes(8, "little")  # start_time_unix_nano = 5
        + _SPAN_IDS
        + _field(5, "second name ✓".encode())  # a repeated scalar: the last one wins
        + b"\x41" + (9).to_bytes(8, "little")  # end_time_unix_nano = 9
        + b"\x30\x03"  # kind = CLIENT
        + b"\x85\x01" + (0x301).to_bytes(4, "little")  # flags (field 16: two-byte tag)
    )
    expected = Span.FromString(span)
    [row] = decode_otlp_protobuf(_request_with_span(span)).spans.to_pylist()
    assert row["name"] == expected.name == "second name ✓"
    assert (row["start_time_unix_nano"], row["end_time_unix_nano"]) == (5, 9)
    assert (row["kind"], row["flags"]) == (expected.kind, expected.flags) == (3, 0x301)
    assert row["trace_id"] == expected.trace_id


def test_a_span_whose_field_overruns_it_is_a_format_error() -> None:
    span = _SPAN_IDS + b"\x2a\x40short"  # name claims 64 bytes, 5 remain
    with pytest.raises(FormatError, match="malformed protobuf"):
        decode_otlp_protobuf(_request_with_span(span))


def test_invalid_utf8_in_a_span_name_is_a_format_error() -> None:
    with pytest.raises(FormatError, match="span name is not valid UTF-8"):
        decode_otlp_protobuf(_request_with_span(_SPAN_IDS + _field(5, b"\xc3\x28")))


def test_large_requests_keep_every_span_in_order() -> None:
    request = ExportTraceServiceRequest()
    scope_spans = request.resource_spans.add().scope_spans.add()
    for i in range(3000):
        span = scope_spans.spans.add(trace_id=(i + 1).to_bytes(16, "big"), span_id=(i + 1).to_bytes(8, "big"),
                                     name=f"op{i}", start_time_unix_nano=i)
        span.attributes.add(key="i").value.int_value = i
    table = decode_otlp_protobuf(request.SerializeToString()).spans
    assert table.column("name").to_pylist() == [f"op{i}" for i in range(3000)]
    assert [a[0]["int"] for a in table.column("span_attributes").to_pylist()] == list(range(3000))


# ---- the column-wise OTLP/JSON reader equals the general one --------------------------------------


def read_both(obj: dict[str, Any]) -> tuple[Any, Any]:
    from spanlake.collector.formats.otlp_json import add_resource, add_scope, read_general
    from spanlake.collector.formats.otlp_json_fast import decode_canonical

    return decode_canonical(obj, add_resource, add_scope).spans, read_general(obj).spans


@pytest.mark.parametrize("path", [EXAMPLE, *SUITE_TRACES], ids=lambda p: p.name)
def test_fixtures_take_the_column_wise_json_path_with_the_same_result(path: Any) -> None:
    fast, general = read_both(json.loads(path.read_text()))
    assert fast.equals(general)


@pytest.mark.parametrize("seed", range(25))
def test_column_wise_json_path_equals_the_general_reader_on_generated_spans(seed: int) -> None:
    from spanlake.collector.formats.otlp_json_fast import Deferred

    obj = to_otlp_json(random_request(seed))
    for rs in obj["resourceSpans"]:  # protobuf's JSON leaves out empty keys; exporters send them
        for holder in [rs.get("resource", {}), *[ss.get("scope", {}) for ss in rs.get("scopeSpans", [])]]:
            for kv in holder.get("attributes", []):
                kv.setdefault("key", "")
        for ss in rs.get("scopeSpans", []):
            for span in ss.get("spans", []):
                items = [span, *span.get("events", []), *span.get("links", [])]
                for kv in [kv for item in items for kv in item.get("attributes", [])]:
                    kv.setdefault("key", "")
    try:
        fast, general = read_both(obj)
    except Deferred:
        pytest.fail("generated OTLP/JSON should be readable column-wise")
    assert canonical(spans_to_otlp_request(fast)) == canonical(spans_to_otlp_request(general))


def test_a_span_with_thousands_of_attributes_is_read_in_full_and_in_order() -> None:
    request = ExportTraceServiceRequest()
    spans = request.resource_spans.add().scope_spans.add().spans
    wide = spans.add(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="wide")
    for i in range(5000):
        value = wide.attributes.add(key=f"k{i}").value
        if i % 3:
            value.string_value = f"v{i}"
        else:
            value.int_value = -i
    for i in range(40):
        spans.add(trace_id=b"\x01" * 16, span_id=(i + 3).to_bytes(8, "big"), name=f"narrow{i}")
    [row, *narrow] = decode_otlp_protobuf(request.SerializeToString()).spans.to_pylist()
    assert len(row["span_attributes"]) == 5000 and len(narrow) == 40
    assert row["span_attributes"][3] == {"key": "k3", "type": ValueType.INT, "str": None, "int": -3,
                                         "double": None, "bool": None, "bytes": None}
    assert [a["key"] for a in row["span_attributes"]] == [f"k{i}" for i in range(5000)]
    assert canonical(spans_to_otlp_request(decode_otlp_protobuf(request.SerializeToString()).spans)) \
        == canonical(request)


def test_malformed_tail_of_a_long_span_is_a_format_error() -> None:
    attrs = b"".join(_field(9, common_pb2.KeyValue(key=f"k{i}").SerializeToString()) for i in range(100))
    with pytest.raises(FormatError, match="malformed protobuf"):
        decode_otlp_protobuf(_request_with_span(_SPAN_IDS + attrs + b"\x4a\x7f"))


def test_a_malformed_span_among_many_is_a_format_error() -> None:
    # Over 48 spans take the vectorized scanner; one bad span must still fail the request.
    good = _SPAN_IDS + _field(5, b"ok")
    spans = [good] * 99 + [_SPAN_IDS + b"\x2a\x40short"] + [good] * 20
    scope_spans = b"".join(b"\x12" + _varint(len(span)) + span for span in spans)
    resource_spans = b"\x12" + _varint(len(scope_spans)) + scope_spans
    body = b"\x0a" + _varint(len(resource_spans)) + resource_spans
    with pytest.raises(FormatError, match=r"span 99: malformed protobuf at byte 28"):
        decode_otlp_protobuf(body)
    assert decode_otlp_protobuf(body.replace(b"\x2a\x40short", b"\x2a\x05short")).spans.num_rows == 120
