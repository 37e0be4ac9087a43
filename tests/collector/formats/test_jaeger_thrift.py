from __future__ import annotations

import base64
import json
import struct
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from spanlake.collector.formats.errors import FormatError
from spanlake.collector.formats.jaeger_thrift import (
    batch_to_spans,
    decode_agent_binary,
    decode_agent_compact,
    decode_thrift_binary_batch,
)
from spanlake.collector.formats.thrift import MessageType, TType, read_binary_struct
from spanlake.storage.attributes import attr_value
from spanlake.storage.schema import STATUS_ERROR, STATUS_OK, STATUS_UNSET, ValueType
from tests.collector.formats.thrift_write import (
    write_binary_message,
    write_binary_struct,
    write_compact_message,
)
from tests.jaeger_model import (
    _time_ns,
    otlp_fixture_differences,
    thrift_batch,
    thrift_batch_bytes,
    v1_trace_to_thrift_batches,
)
from tests.paths import FIXTURES, JAEGER_SUITE

FIXTURE_DIR = FIXTURES / "jaeger" / "thrift-jaeger-to-domain"
# Jaeger model vType names -> our attribute types, as Jaeger's Thrift receiver maps them.
DOMAIN_TYPES = {"STRING": ValueType.STRING, "BOOL": ValueType.BOOL, "INT64": ValueType.INT,
                "FLOAT64": ValueType.DOUBLE, "BINARY": ValueType.STRING}  # binary -> base64 text


def load(name: str) -> Any:
    return json.loads((FIXTURE_DIR / name).read_text())


def attributes(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {a["key"]: attr_value(a) for a in items}


def attribute_types(items: list[dict[str, Any]]) -> dict[str, int]:
    return {a["key"]: a["type"] for a in items}


def b64(text: str) -> bytes:
    return base64.b64decode(text)


def emit_batch(batch: dict[str, Any], protocol: str) -> bytes:
    write = write_compact_message if protocol == "compact" else write_binary_message
    return write("emitBatch", MessageType.ONEWAY, 1, {1: (TType.STRUCT, thrift_batch(batch))})


@pytest.mark.parametrize("n", ["01", "02"])
def test_fixture_batch_matches_jaegers_domain_model(n: str) -> None:
    rows = decode_thrift_binary_batch(thrift_batch_bytes(load(f"thrift_batch_{n}.json"))).to_pylist()
    expected = load(f"domain_{n}.json")["spans"]
    assert len(rows) == len(expected)
    for row, span in zip(rows, expected, strict=True):
        assert row["trace_id"] == b64(span["traceId"])
        assert row["span_id"] == b64(span["spanId"])
        assert row["name"] == span["operationName"]
        assert row["start_time_unix_nano"] == _time_ns(span["startTime"])
        assert row["duration_nano"] == int(span["duration"].removesuffix("ns"))
        assert row["service_name"] == span["process"]["serviceName"]
        # The parent is the reference Jaeger resolves (CHILD_OF first, else FOLLOWS_FROM).
        assert row["parent_span_id"] == b64(span["references"][0]["spanId"])
        tags = {t["key"]: t for t in span.get("tags", []) if t["key"] != "span.kind"}
        want = {k: DOMAIN_TYPES[t["vType"]] for k, t in tags.items()}
        assert attribute_types(row["span_attributes"]) == want
        assert len(row["events"]) == len(span.get("logs", []))


def test_tag_types_survive_and_span_kind_becomes_kind() -> None:
    row = decode_thrift_binary_batch(thrift_batch_bytes(load("thrift_batch_01.json"))).to_pylist()[0]
    assert row["kind"] == 2  # server
    values = attributes(row["span_attributes"])
    assert values["peer.ipv4"] == 3224716605
    assert values["peer.port"] == 53931
    assert values["someDouble"] == 129.8
    assert values["someBool"] is True
    assert "span.kind" not in values


def test_process_tags_become_resource_with_renamed_host_and_version() -> None:
    row = decode_thrift_binary_batch(thrift_batch_bytes(load("thrift_batch_01.json"))).to_pylist()[0]
    assert attributes(row["resource_attributes"]) == {
        "service.name": "api",
        "ip": "10.53.69.61",
        "host.name": "api246-sjc1",
        "opencensus.exporterversion": "Jaeger-Python-3.1.0",
    }


def test_logs_become_events_named_by_their_event_field() -> None:
    row = decode_thrift_binary_batch(thrift_batch_bytes(load("thrift_batch_01.json"))).to_pylist()[0]
    first, second = row["events"]
    assert first["name"] == "" and attributes(first["attributes"]) == {"key1": "value1", "key2": "value2"}
    assert second["name"] == "nothing" and second["attributes"] == []
    assert first["time_unix_nano"] == 1485467191639875000


def test_binary_tag_becomes_base64_string() -> None:
    row = decode_thrift_binary_batch(thrift_batch_bytes(load("thrift_batch_02.json"))).to_pylist()[0]
    assert row["span_attributes"][0]["type"] == ValueType.STRING
    assert attributes(row["span_attributes"]) == {"peer.service": "AAAAAAAAMDk="}


def test_follows_from_reference_to_the_parent_is_kept_as_a_link() -> None:
    rows = decode_thrift_binary_batch(thrift_batch_bytes(load("thrift_batch_02.json"))).to_pylist()
    first, second = rows
    assert first["links"] == []  # the explicit parent is the CHILD_OF parent, not a link
    assert second["parent_span_id"] == (6866147).to_bytes(8, "big")
    (link,) = second["links"]
    assert link["span_id"] == (6866147).to_bytes(8, "big")
    assert attributes(link["attributes"]) == {"opentracing.ref_type": "follows_from"}


@pytest.mark.parametrize("protocol", ["compact", "binary"])
def test_agent_emit_batch_decodes_like_the_http_body(protocol: str) -> None:
    batch = load("thrift_batch_01.json")
    decode = decode_agent_compact if protocol == "compact" else decode_agent_binary
    assert decode(emit_batch(batch, protocol)).equals(decode_thrift_binary_batch(thrift_batch_bytes(batch)))


def one_span(**overrides: Any) -> dict[str, Any]:
    span = {"traceIdLow": 1, "spanId": 2, "operationName": "op", "startTime": 10, "duration": 5, "tags": []}
    span.update(overrides)
    return {"process": {"serviceName": "svc"}, "spans": [span]}


def decode_one(**overrides: Any) -> dict[str, Any]:
    return dict(decode_thrift_binary_batch(thrift_batch_bytes(one_span(**overrides))).to_pylist()[0])


def tag(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"key": key, "vType": "BOOL", "vBool": value}
    if isinstance(value, int):
        return {"key": key, "vType": "LONG", "vLong": value}
    return {"key": key, "vType": "STRING", "vStr": value}


@pytest.mark.parametrize(
    ("tags", "status", "message"),
    [
        ([tag("error", True)], STATUS_ERROR, ""),
        ([tag("error", True), tag("otel.status_code", "OK")], STATUS_ERROR, ""),
        ([tag("otel.status_code", "OK")], STATUS_OK, ""),
        ([tag("otel.status_code", "ERROR"), tag("otel.status_description", "boom")], STATUS_ERROR, "boom"),
        ([tag("error", "true")], STATUS_UNSET, ""),  # only a bool error tag counts
        ([tag("http.status_code", 500)], STATUS_ERROR, ""),
        ([tag("http.status_code", "503"), tag("http.status_message", "down")], STATUS_ERROR, "down"),
        ([tag("http.status_code", 200)], STATUS_UNSET, ""),
        ([tag("span.kind", "server"), tag("http.status_code", 404)], STATUS_UNSET, ""),
        ([tag("span.kind", "client"), tag("http.status_code", 404)], STATUS_ERROR, ""),
    ],
)
def test_status_follows_jaegers_error_tag_rules(tags: list[Any], status: int, message: str) -> None:
    row = decode_one(tags=tags)
    assert (row["status_code"], row["status_message"]) == (status, message)
    keys = set(attributes(row["span_attributes"]))
    assert not keys & {"otel.status_code", "otel.status_description", "span.kind"}
    assert ("error" in keys) == (tags[0] == tag("error", "true"))


def test_trace_state_and_scope_tags_move_to_their_columns() -> None:
    row = decode_one(tags=[tag("w3c.tracestate", "k=v"), tag("otel.scope.name", "lib"),
                           tag("otel.scope.version", "1.2"), tag("x", "y")])
    assert (row["trace_state"], row["scope_name"], row["scope_version"]) == ("k=v", "lib", "1.2")
    assert attributes(row["span_attributes"]) == {"x": "y"}


def test_negative_signed_ids_are_read_as_unsigned_128_bit() -> None:
    row = decode_one(traceIdLow=-1, traceIdHigh=-2, spanId=-3, parentSpanId=-4)
    assert row["trace_id"].hex() == "fffffffffffffffe" + "ffffffffffffffff"
    assert row["span_id"].hex() == "fffffffffffffffd"
    assert row["parent_span_id"].hex() == "fffffffffffffffc"


def test_root_span_has_no_parent_and_no_links() -> None:
    row = decode_one()
    assert row["parent_span_id"] is None and row["links"] == []
    assert row["trace_id"].hex() == "0" * 31 + "1"


def test_child_of_reference_without_parent_span_id_becomes_the_parent() -> None:
    row = decode_one(references=[{"refType": "FOLLOWS_FROM", "traceIdLow": 9, "spanId": 8},
                                 {"refType": "CHILD_OF", "traceIdLow": 1, "spanId": 7}])
    assert row["parent_span_id"] == (7).to_bytes(8, "big")
    (link,) = row["links"]  # the other trace's reference stays a link
    assert link["trace_id"] == (9).to_bytes(16, "big")


VALID = thrift_batch_bytes(load("thrift_batch_01.json"))


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\xff" * 64,
        b"not thrift at all, just text",
        VALID[: len(VALID) // 2],
        VALID[:-1],
        VALID + b"\x00",
        # a list header announcing 2^31-1 spans in a 20-byte body must not allocate
        bytes([TType.LIST]) + struct.pack(">h", 2) + bytes([TType.STRUCT]) + struct.pack(">i", 2**31 - 1),
        # a string claiming 1 GiB
        bytes([TType.STRUCT]) + struct.pack(">h", 1) + bytes([TType.STRING]) + struct.pack(">hi", 1, 2**30),
        # deep nesting of lists of lists
        (bytes([TType.LIST]) + struct.pack(">h", 1)) + (bytes([TType.LIST]) + struct.pack(">i", 1)) * 200,
    ],
)
def test_malformed_http_body_raises_format_error(payload: bytes) -> None:
    with pytest.raises(FormatError):
        decode_thrift_binary_batch(payload)


def test_every_truncation_of_a_valid_batch_raises_format_error() -> None:
    for end in range(len(VALID)):
        with pytest.raises(FormatError):
            decode_thrift_binary_batch(VALID[:end])


@pytest.mark.parametrize("protocol", ["compact", "binary"])
def test_every_truncation_of_an_agent_message_raises_format_error(protocol: str) -> None:
    valid = emit_batch(load("thrift_batch_01.json"), protocol)
    decode = decode_agent_compact if protocol == "compact" else decode_agent_binary
    for end in range(len(valid)):
        with pytest.raises(FormatError):
            decode(valid[:end])


def test_agent_message_for_another_method_is_rejected() -> None:
    message = write_compact_message("emitZipkinBatch", MessageType.ONEWAY, 1,
                                    {1: (TType.LIST, (TType.STRUCT, []))})
    with pytest.raises(FormatError, match="emitZipkinBatch"):
        decode_agent_compact(message)


def test_span_missing_a_required_field_names_it() -> None:
    batch = one_span()
    typed = thrift_batch(batch)
    del typed[2][1][1][0][3]  # spans[0].spanId
    with pytest.raises(FormatError, match=r"batch.spans\[0\].spanId"):
        decode_thrift_binary_batch(write_binary_struct(typed))


V1_TRACES = sorted((FIXTURES / "jaeger" / "storage-integration-v1-model" / "traces").glob("*.json"))


@pytest.mark.parametrize("path", V1_TRACES, ids=lambda p: p.stem)
def test_v1_model_trace_converts_like_the_otlp_form_of_the_suite(path: Path) -> None:
    # With binary tags kept as bytes (Jaeger v1's domain model), the Thrift path reproduces the
    # OTLP form of Jaeger's suite exactly; the default (base64 text) differs only in those tags.
    tables = [batch_to_spans(read_binary_struct(b), binary_as_base64=False)
              for b in v1_trace_to_thrift_batches(path)]
    otlp = json.loads((JAEGER_SUITE / "traces" / path.name).read_text())
    assert otlp_fixture_differences(pa.concat_tables(tables).to_pylist(), otlp) == []


def test_invalid_utf8_is_sanitized_as_jaeger_does_instead_of_dropping_the_batch() -> None:
    typed = thrift_batch(one_span(tags=[tag("ok", "v")]))
    span_fields = typed[2][1][1][0]
    span_fields[5] = (TType.STRING, b"\xffname")
    tags = span_fields[10][1][1]
    tags.append({1: (TType.STRING, b"bad\xfekey"), 2: (TType.I32, 0), 3: (TType.STRING, "x")})
    tags.append({1: (TType.STRING, "raw"), 2: (TType.I32, 0), 3: (TType.STRING, b"\xc3")})
    row = decode_thrift_binary_batch(write_binary_struct(typed)).to_pylist()[0]
    assert row["name"] == "invalid-span-name"
    assert attributes(row["span_attributes"]) == {"ok": "v", "invalid-tag-key": "x", "raw": b"\xc3"}
