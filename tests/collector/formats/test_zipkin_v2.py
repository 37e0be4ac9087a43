from __future__ import annotations

import json

import pytest

from spanlake.collector.formats.errors import FormatError
from spanlake.collector.formats.proto.zipkin import ListOfSpans
from spanlake.collector.formats.zipkin_v2 import decode_zipkin_v2_json, decode_zipkin_v2_proto
from spanlake.storage.attributes import attr_value
from spanlake.storage.schema import SPAN_SCHEMA, STATUS_ERROR, STATUS_UNSET, ZIPKIN_ORIGIN, ZIPKIN_SHARED
from tests.collector.zipkin_payloads import DESER, OTEL_RECEIVER, RECEIVER_HTTP, proto_bytes
from tests.paths import ZIPKIN_LENS


def attributes(rows):
    return {a["key"]: attr_value(a) for a in rows}


def only_row(table):
    assert table.schema == SPAN_SCHEMA
    assert table.num_rows == 1
    return table.to_pylist()[0]


def span_json(**fields):
    return json.dumps([{"traceId": "1", "id": "2", "name": "op", **fields}]).encode()


def test_v2_json_client_span_maps_ids_kind_times_endpoints_and_annotations():
    row = only_row(decode_zipkin_v2_json((DESER / "zipkin_01.json").read_bytes()))
    assert row["trace_id"].hex() == "bd7a974555f6b982bd71977555f6b981"
    assert row["span_id"].hex() == "0000000000000002"
    assert row["parent_span_id"].hex() == "0000000000000001"
    assert (row["name"], row["kind"]) == ("foo", 3)
    assert (row["start_time_unix_nano"], row["duration_nano"]) == (1_000, 10_000)
    assert row["flags"] & 0xFF == 2  # debug, Jaeger's debug bit
    assert row["service_name"] == "foo"
    assert attributes(row["resource_attributes"]) == {"service.name": "foo", "net.host.ip": "10.43.17.42"}
    assert attributes(row["span_attributes"]) == {
        "foo": "bar", "peer.service": "bar", "net.peer.ip": "10.43.17.43"}
    assert [(e["name"], e["time_unix_nano"]) for e in row["events"]] == [("foo", 1_000)]


def test_short_trace_id_is_left_padded_and_local_port_kept():
    row = only_row(decode_zipkin_v2_json((DESER / "zipkin_02.json").read_bytes()))
    assert row["trace_id"] == bytes(15) + b"\x02"
    assert row["kind"] == 0  # no kind sent
    assert attributes(row["resource_attributes"]) == {
        "service.name": "bar", "net.host.ip": "10.43.17.42", "net.host.port": 8080}


def test_producer_remote_service_becomes_peer_service():
    row = only_row(decode_zipkin_v2_json((DESER / "zipkin_03.json").read_bytes()))
    assert row["trace_id"].hex() == "0000000000000000091f00370361e578"
    assert row["parent_span_id"].hex() == "0c26551047c72d19"  # 15 hex digits, left-padded
    assert (row["kind"], row["service_name"]) == (4, "schemas-service")
    assert attributes(row["span_attributes"]) == {"kafka.topic": "schema-changed", "peer.service": "kafka"}
    assert row["duration_nano"] == 9_550_570_000


def test_spans_with_v1_annotations_and_a_corrupt_timestamp_are_accepted():
    table = decode_zipkin_v2_json((DESER / "zipkin_v1_merged_spans.json").read_bytes())
    rows = table.to_pylist()
    assert [r["name"] for r in rows] == ["get /", "get /api"]
    assert all(r["service_name"] == "first_service" for r in rows)
    assert rows[0]["duration_nano"] == 14_861_000  # the span's own duration, not the corrupt "ss"
    assert [e["name"] for e in rows[1]["events"]] == ["cs", "sr", "cr", "ss"]


def test_otel_status_tags_become_the_status():
    row = only_row(decode_zipkin_v2_json((OTEL_RECEIVER / "sample3.json").read_bytes()))
    assert (row["status_code"], row["status_message"]) == (STATUS_ERROR, "Something failed")
    tags = attributes(row["span_attributes"])
    assert "otel.status_code" not in tags and "otel.status_description" not in tags
    assert tags["peer.service"] == "backend" and tags["net.peer.port"] == 9000
    # ipv6 "7::0.128.128.127" is normalised; a local endpoint without a name gets Jaeger's fallback
    assert attributes(row["resource_attributes"]) == {
        "service.name": "missing-service-name", "net.host.ip": "7::80:807f"}


def test_error_tag_value_becomes_the_error_status_message():
    row = only_row(decode_zipkin_v2_json((OTEL_RECEIVER / "sample4.json").read_bytes()))
    assert (row["status_code"], row["status_message"]) == (STATUS_ERROR, "Non-basic error message")
    assert "error" not in attributes(row["span_attributes"])


@pytest.mark.parametrize(("tags", "code", "message"), [
    ({"error": ""}, STATUS_ERROR, ""),
    ({"error": "true"}, STATUS_ERROR, ""),
    ({"error": "false"}, STATUS_UNSET, ""),
    ({"otel.status_code": "OK"}, 1, ""),
    ({"otel.status_code": "ERROR", "otel.status_description": "boom", "error": "x"}, STATUS_ERROR, "boom"),
    ({"error": "timeout", "otel.status_code": "OK"}, STATUS_ERROR, "timeout"),  # error is authoritative
])
def test_status_from_tags(tags, code, message):
    row = only_row(decode_zipkin_v2_json(span_json(tags=tags)))
    assert (row["status_code"], row["status_message"]) == (code, message)


def test_scope_tags_become_the_scope():
    tags = {"otel.scope.name": "my.lib", "otel.scope.version": "1.2", "k": "v"}
    row = only_row(decode_zipkin_v2_json(span_json(tags=tags)))
    assert (row["scope_name"], row["scope_version"]) == ("my.lib", "1.2")
    assert attributes(row["span_attributes"]) == {"k": "v"}


def test_span_without_timestamp_takes_its_annotations_times():
    annotations = [{"timestamp": 5, "value": "a"}, {"timestamp": 9, "value": "b"}]
    row = only_row(decode_zipkin_v2_json(span_json(annotations=annotations)))
    assert (row["start_time_unix_nano"], row["end_time_unix_nano"]) == (5_000, 9_000)
    bare = only_row(decode_zipkin_v2_json(span_json()))
    assert (bare["start_time_unix_nano"], bare["duration_nano"]) == (0, 0)


def test_missing_local_endpoint_gets_missing_service_name_and_empty_one_empty_service_name():
    assert only_row(decode_zipkin_v2_json(span_json()))["service_name"] == "missing-service-name"
    empty = span_json(localEndpoint={"serviceName": ""})
    assert only_row(decode_zipkin_v2_json(empty))["service_name"] == "empty-service-name"


def test_non_string_tag_values_are_kept_as_text():
    row = only_row(decode_zipkin_v2_json(span_json(tags={"n": 3, "b": True})))
    assert attributes(row["span_attributes"]) == {"n": "3", "b": "true"}


def test_empty_list_decodes_to_no_rows():
    assert decode_zipkin_v2_json(b"[]").num_rows == 0


@pytest.mark.parametrize(("body", "message"), [
    (b"garbage", "invalid JSON"),
    (b'{"traceId": "1"}', "expected a JSON array"),
    (b"[1]", "span 0: expected a JSON object"),
    (span_json(traceId="xyz"), "span 0: traceId: not hex"),
    (span_json(traceId="1" * 33), "span 0: traceId: expected 1 to 32 hex"),
    (span_json(id=None), "span 0: id"),
    (span_json(kind="SIDEWAYS"), "kind must be one of"),
    (span_json(timestamp="yesterday"), "span 0: timestamp"),
    (span_json(tags=["a"]), "tags must be a JSON object"),
])
def test_malformed_v2_json_names_the_problem(body, message):
    with pytest.raises(FormatError, match=message):
        decode_zipkin_v2_json(body)


def test_v2_proto_matches_the_json_form_of_the_same_span():
    row = only_row(decode_zipkin_v2_proto(proto_bytes(DESER / "zipkin_proto_01.json")))
    expected = only_row(decode_zipkin_v2_json((DESER / "zipkin_01.json").read_bytes()))
    assert row["trace_id"].hex() == "428568baaa09467e428e688aaa09467f"
    assert {**row, "trace_id": None} == {**expected, "trace_id": None}


@pytest.mark.parametrize(("path", "trace_id"), [
    (DESER / "zipkin_proto_02.json", "00000000000000000000000000000002"),  # 8 bytes, left-padded
    (RECEIVER_HTTP / "zipkin_proto_02.json", "428568baaa09467e428e688aaa09467f"),
])
def test_v2_proto_64_and_128_bit_trace_ids(path, trace_id):
    row = only_row(decode_zipkin_v2_proto(proto_bytes(path)))
    assert row["trace_id"].hex() == trace_id
    assert attributes(row["resource_attributes"]) == {
        "service.name": "bar", "net.host.ip": "10.43.17.42", "net.host.port": 8080}


def test_truncated_protobuf_is_rejected():
    body = proto_bytes(DESER / "zipkin_proto_01.json")
    with pytest.raises(FormatError, match="not a Zipkin protobuf"):
        decode_zipkin_v2_proto(body[: len(body) // 2])


def test_protobuf_span_without_ids_is_rejected():
    with pytest.raises(FormatError, match="span 0: id must be 8 bytes"):
        decode_zipkin_v2_proto(b"\x0a\x00")  # ListOfSpans with one empty span


# ---- Zipkin-exact ingest (the zipkin-lens traces showed each of these) ----------------------------


def test_ip_literals_zipkin_accepts_are_kept_as_sent():
    # smartthings-oauth-authorization.json has 52.0.0.04: one such span used to fail all 175.
    table = decode_zipkin_v2_json((ZIPKIN_LENS / "smartthings-oauth-authorization.json").read_bytes())
    assert table.num_rows == 175
    peer_ips = {a["str"] for row in table.to_pylist() for a in row["span_attributes"]
                if a["key"] == "net.peer.ip"}
    assert {"52.0.0.04", "52.0.0.05"} <= peer_ips


@pytest.mark.parametrize(("ip", "stored"), [
    ("52.0.0.04", "52.0.0.04"),
    ("::ffff:10.1.2.3", "10.1.2.3"),  # IPv4 embedded in IPv6 is IPv4 to Zipkin
    ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"),  # IPv6 written compressed, as Zipkin does
    ("not-an-ip", None),
    ("300.1.1.1", None),
    ("1.2.3", None),
])
def test_an_unparseable_ip_is_dropped_from_the_endpoint_and_the_span_kept(ip, stored):
    row = only_row(decode_zipkin_v2_json(span_json(localEndpoint={"serviceName": "web", "ipv4": ip,
                                                                  "port": 80})))
    assert attributes(row["resource_attributes"]) == {
        "service.name": "web", "net.host.port": 80, **({"net.host.ip": stored} if stored else {})}


def test_a_proto_address_of_the_wrong_length_is_dropped_too():
    message = ListOfSpans()
    span = message.spans.add(trace_id=b"\x01" * 16, id=b"\x02" * 8, name="x")
    span.local_endpoint.service_name = "web"
    span.local_endpoint.ipv4 = b"\x0a\x00\x01"
    row = only_row(decode_zipkin_v2_proto(message.SerializeToString()))
    assert attributes(row["resource_attributes"]) == {"service.name": "web"}


def test_a_parent_id_equal_to_the_span_id_means_no_parent():
    row = only_row(decode_zipkin_v2_json(span_json(id="5", parentId="0000000000000005")))
    assert row["parent_span_id"] is None


def test_the_shared_flag_is_stored_except_on_a_client_span():
    server = only_row(decode_zipkin_v2_json(span_json(kind="SERVER", shared=True)))
    client = only_row(decode_zipkin_v2_json(span_json(kind="CLIENT", shared=True)))
    assert server["flags"] & ZIPKIN_SHARED
    assert not client["flags"] & ZIPKIN_SHARED
    assert server["flags"] & ZIPKIN_ORIGIN and client["flags"] & ZIPKIN_ORIGIN
