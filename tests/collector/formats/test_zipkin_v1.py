from __future__ import annotations

import json

import pytest

from spanlake.collector.formats.errors import FormatError
from spanlake.collector.formats.zipkin_v1 import decode_zipkin_v1_json, decode_zipkin_v1_thrift
from spanlake.storage.attributes import attr_value
from spanlake.storage.schema import SPAN_SCHEMA, STATUS_ERROR
from tests.collector.zipkin_payloads import (
    DESER,
    RECEIVER_HTTP,
    THRIFT_TO_DOMAIN,
    thrift_bytes,
    thrift_fixture_bytes,
)


def attributes(rows):
    return {a["key"]: attr_value(a) for a in rows}


def rows_of(table):
    assert table.schema == SPAN_SCHEMA
    return table.to_pylist()


def host(name, ipv4=None, port=None):
    return {k: v for k, v in {"serviceName": name, "ipv4": ipv4, "port": port}.items() if v is not None}


def v1_json(**fields):
    return json.dumps([{"traceId": "a1", "id": "b2", "name": "op", **fields}]).encode()


# --- Thrift: Jaeger's zipkin-thrift-v1-to-domain fixtures (zipkin_0N -> domain_0N) ------------------


def test_thrift_general_conversion_matches_jaeger_domain_01():
    rows = rows_of(decode_zipkin_v1_thrift(thrift_fixture_bytes(THRIFT_TO_DOMAIN / "zipkin_01.json")))
    assert len(rows) == 3
    first, client, server = rows
    # two traces share the low ID 1; trace_id_high=2 makes the third a different trace
    assert first["trace_id"].hex() == client["trace_id"].hex() == "00000000000000000000000000000001"
    assert server["trace_id"].hex() == "00000000000000020000000000000001"
    assert server["parent_span_id"].hex() == "0000000000000002"

    assert first["name"] == "test-general-conversion"
    assert (first["kind"], first["service_name"]) == (0, "service-x")
    assert first["start_time_unix_nano"] == 1485467191639875 * 1000
    # the empty annotation is dropped; "ca" without a host carries no address
    assert [(e["name"], e["time_unix_nano"]) for e in first["events"]] == [
        ("some-event", 0), ('{"x":"y"}', 1485467191639875 * 1000)]
    assert attributes(first["span_attributes"]) == {}

    assert (client["kind"], client["service_name"]) == (3, "service-x")
    assert attributes(client["span_attributes"]) == {
        "peer.service": "service-y", "net.peer.ip": "0.0.91.160", "net.peer.port": 80}
    assert (server["kind"], server["service_name"]) == (2, "service-y")
    assert attributes(server["span_attributes"]) == {
        "peer.service": "service-x", "net.peer.ip": "2001:db8::c001"}


def test_thrift_lc_host_is_the_local_endpoint_domain_02():
    (row,) = rows_of(decode_zipkin_v1_thrift(thrift_fixture_bytes(THRIFT_TO_DOMAIN / "zipkin_02.json")))
    assert attributes(row["resource_attributes"]) == {"service.name": "service-x", "net.host.ip": "0.0.48.57"}
    assert attributes(row["span_attributes"]) == {
        "lc": "some-component", "jaegerClient": "Go-1.1", "jaeger.hostname": "some-host.com"}


def test_thrift_typed_binary_annotations_domain_03():
    (row,) = rows_of(decode_zipkin_v1_thrift(thrift_fixture_bytes(THRIFT_TO_DOMAIN / "zipkin_03.json")))
    assert (row["flags"] & 0xFF, row["kind"], row["duration_nano"]) == (2, 2, 5_000)  # debug
    tags = attributes(row["span_attributes"])
    assert {k: tags[k] for k in ("bool", "bytes", "i16", "i32", "i64", "double", "string")} == {
        "bool": True, "bytes": b"some-host.com", "i16": 12345, "i32": 12345, "i64": 12345,
        "double": 12345.0, "string": "some-host.com"}
    assert isinstance(tags["double"], float) and isinstance(tags["i64"], int)
    # a value of the wrong width is kept as an explanation instead of failing the batch (Jaeger does)
    for key in ("i16_bad_value", "i32_bad_value", "i64_bad_value", "double_bad_value"):
        assert tags[key].startswith("cannot parse Zipkin ") and "AQ==" in tags[key]


def test_thrift_merged_client_and_server_span_is_split_with_empty_service_fallback():
    body = thrift_fixture_bytes(RECEIVER_HTTP / "zipkin_thrift_v1_merged_spans.json")
    rows = rows_of(decode_zipkin_v1_thrift(body))
    assert [(r["name"], r["kind"]) for r in rows] == [("get /", 2), ("get /api", 3), ("get /api", 2)]
    assert {r["service_name"] for r in rows} == {"empty-service-name"}
    root, client, server = rows
    assert root["span_id"].hex() == "4ed11df465275600"
    assert client["span_id"] == server["span_id"]  # the negative i64 id, as unsigned
    assert client["span_id"].hex() == (-3944181038374441761 & (2**64 - 1)).to_bytes(8, "big").hex()
    assert root["duration_nano"] == 14_861_000  # the corrupt 15-digit "ss" does not matter
    assert (client["start_time_unix_nano"], client["duration_nano"]) == (1633073248678309000, 3_360_000)
    assert (server["start_time_unix_nano"], server["duration_nano"]) == (1633073248681669000, 6_719_000)


def test_thrift_128_bit_trace_id_from_trace_id_high():
    body = thrift_bytes([{"trace_id": 5, "trace_id_high": -1, "id": 7, "name": "x"}])
    (row,) = rows_of(decode_zipkin_v1_thrift(body))
    assert row["trace_id"].hex() == "ffffffffffffffff0000000000000005"


@pytest.mark.parametrize(("body", "message"), [
    (b"", "truncated"),
    (b"garbage!", "thrift"),
    (thrift_bytes([{"trace_id": 1, "id": 2, "name": "x"}])[:-3], "truncated"),
    (thrift_bytes([{"name": "x"}]), "span 0: trace_id"),
])
def test_malformed_thrift_is_rejected(body, message):
    with pytest.raises(FormatError, match=message):
        decode_zipkin_v1_thrift(body)


# --- JSON ---------------------------------------------------------------------------------------------


def test_v1_json_client_annotations_make_a_client_span_with_sa_as_remote():
    annotations = [{"timestamp": 10, "value": "cs", "endpoint": host("front", "10.0.0.1", 80)},
                   {"timestamp": 15, "value": "retry"},
                   {"timestamp": 30, "value": "cr", "endpoint": host("front", "10.0.0.1", 80)}]
    binary = [{"key": "sa", "value": True, "endpoint": host("db", "10.0.0.2", 5432)},
              {"key": "http.path", "value": "/x"}, {"key": "error", "value": "boom"}]
    (row,) = rows_of(decode_zipkin_v1_json(v1_json(annotations=annotations, binaryAnnotations=binary)))
    assert (row["kind"], row["service_name"]) == (3, "front")
    assert (row["start_time_unix_nano"], row["duration_nano"]) == (10_000, 20_000)
    assert [e["name"] for e in row["events"]] == ["retry"]  # core annotations become the times
    assert attributes(row["resource_attributes"]) == {
        "service.name": "front", "net.host.ip": "10.0.0.1", "net.host.port": 80}
    assert attributes(row["span_attributes"]) == {
        "http.path": "/x", "peer.service": "db", "net.peer.ip": "10.0.0.2", "net.peer.port": 5432}
    assert (row["status_code"], row["status_message"]) == (STATUS_ERROR, "boom")


def test_v1_json_merged_span_splits_into_client_and_shared_server():
    annotations = [{"timestamp": 10, "value": "cs", "endpoint": host("front")},
                   {"timestamp": 12, "value": "sr", "endpoint": host("back")},
                   {"timestamp": 18, "value": "ss", "endpoint": host("back")},
                   {"timestamp": 20, "value": "cr", "endpoint": host("front")}]
    binary = [{"key": "ca", "value": True, "endpoint": host("front", "10.0.0.1")}]
    client, server = rows_of(decode_zipkin_v1_json(v1_json(annotations=annotations, binaryAnnotations=binary,
                                                            parentId="a0")))
    assert (client["kind"], client["service_name"], client["duration_nano"]) == (3, "front", 10_000)
    assert (server["kind"], server["service_name"], server["duration_nano"]) == (2, "back", 6_000)
    assert server["span_id"] == client["span_id"] and server["parent_span_id"] == client["parent_span_id"]
    assert attributes(server["span_attributes"]) == {"peer.service": "front", "net.peer.ip": "10.0.0.1"}


@pytest.mark.parametrize(("annotation", "address", "kind"), [
    ("ms", "ma", 4),
    ("mr", "ma", 5),
])
def test_v1_json_messaging_annotations(annotation, address, kind):
    body = v1_json(annotations=[{"timestamp": 7, "value": annotation, "endpoint": host("svc")}],
                   binaryAnnotations=[{"key": address, "value": True, "endpoint": host("kafka")}])
    (row,) = rows_of(decode_zipkin_v1_json(body))
    assert (row["kind"], row["start_time_unix_nano"]) == (kind, 7_000)
    assert attributes(row["span_attributes"]) == {"peer.service": "kafka"}


def test_v1_json_lc_names_the_local_service_of_a_span_without_core_annotations():
    body = v1_json(timestamp=3, duration=4,
                   binaryAnnotations=[{"key": "lc", "value": "", "endpoint": host("worker")}])
    (row,) = rows_of(decode_zipkin_v1_json(body))
    assert (row["kind"], row["service_name"], row["duration_nano"]) == (0, "worker", 4_000)
    assert attributes(row["span_attributes"]) == {}


def test_v1_json_typed_binary_annotations_and_trace_id_high():
    binary = [{"key": "n", "value": 3}, {"key": "f", "value": 1.5}, {"key": "b", "value": False},
              {"key": "i", "value": "42", "type": "I64"}, {"key": "raw", "value": "AAE=", "type": "BYTES"}]
    body = v1_json(traceIdHigh="00000000000000ff", binaryAnnotations=binary)
    (row,) = rows_of(decode_zipkin_v1_json(body))
    assert row["trace_id"].hex() == "00000000000000ff00000000000000a1"
    assert attributes(row["span_attributes"]) == {"n": 3, "f": 1.5, "b": False, "i": 42, "raw": b"\x00\x01"}


def test_v1_endpoint_also_takes_v2_shaped_spans():
    rows = rows_of(decode_zipkin_v1_json((DESER / "zipkin_v1_merged_spans.json").read_bytes()))
    assert [(r["name"], r["service_name"]) for r in rows] == [("get /", "first_service"),
                                                            ("get /api", "first_service")]


@pytest.mark.parametrize(("body", "message"), [
    (b"{not json", "invalid JSON"),
    (b"{}", "expected a JSON array"),
    (v1_json(id="zz"), "span 0: id: not hex"),
    (v1_json(annotations={"value": "cs"}), "annotations must be a list"),
    (v1_json(binaryAnnotations=[{"value": "x"}]), "binaryAnnotation 0: expected an object with a string key"),
    (v1_json(binaryAnnotations=[{"key": "k", "value": "x", "type": "I64"}]), "is not a I64"),
])
def test_malformed_v1_json_names_the_problem(body, message):
    with pytest.raises(FormatError, match=message):
        decode_zipkin_v1_json(body)
