"""Spans -> Zipkin v2 JSON: Zipkin-ingested spans come back as sent; OTLP/Jaeger spans as the
OpenTelemetry Collector's Zipkin exporter (translator zipkinv2 ``FromTraces``) writes them."""

from __future__ import annotations

import json

import pytest

from spanlake.collector.formats.zipkin_v2 import decode_zipkin_v2_json
from spanlake.query.formats.zipkin_json import ensure_root, spans_to_zipkin
from spanlake.storage.attributes import attr
from spanlake.storage.rows import spans_table
from spanlake.storage.schema import SPAN_KIND_BY_NAME, STATUS_ERROR, STATUS_OK
from tests.paths import FIXTURES
from tests.zipkin_data import LENS_FILES, normalized

TRACE = bytes.fromhex("5b8efff798038103d269b633813fc60c")
SPAN = bytes.fromhex("eee19b7ec3c1b174")
PARENT = bytes.fromhex("eee19b7ec3c1b173")
START = 1_544_712_660_000_000_000


def otlp_span(**fields: object) -> dict[str, object]:
    row: dict[str, object] = {
        "trace_id": TRACE, "span_id": SPAN, "parent_span_id": PARENT, "name": "Get /Checkout",
        "kind": SPAN_KIND_BY_NAME["server"], "start_time_unix_nano": START,
        "end_time_unix_nano": START + 1_000_000_000,
        "resource_attributes": [attr("service.name", "frontend"), attr("host.name", "web-1")],
    }
    row.update(fields)
    return row


def convert(**fields: object) -> dict[str, object]:
    (span,) = spans_to_zipkin(spans_table([otlp_span(**fields)]))
    return span


def test_otlp_span_maps_ids_times_kind_and_lower_cases_the_name():
    span = convert()
    assert span == {
        "traceId": TRACE.hex(), "parentId": PARENT.hex(), "id": SPAN.hex(), "kind": "SERVER",
        "name": "get /checkout", "timestamp": START // 1000, "duration": 1_000_000,
        "localEndpoint": {"serviceName": "frontend"}, "tags": {"host.name": "web-1"},
    }


def test_times_round_to_the_nearest_microsecond_and_a_tiny_duration_is_one():
    span = convert(start_time_unix_nano=START + 1_500, end_time_unix_nano=START + 1_900)
    assert (span["timestamp"], span["duration"]) == (START // 1000 + 2, 1)


def test_a_64_bit_trace_id_is_written_with_16_hex_characters():
    assert convert(trace_id=bytes(8) + SPAN)["traceId"] == SPAN.hex()


def test_endpoints_come_from_the_semantic_convention_attributes():
    span = convert(span_attributes=[attr("net.host.ip", "10.0.0.1"), attr("net.host.port", 8080),
                                    attr("peer.service", "payments"), attr("net.peer.ip", "fe80::1"),
                                    attr("net.peer.port", 443), attr("http.method", "GET")])
    assert span["localEndpoint"] == {"serviceName": "frontend", "ipv4": "10.0.0.1", "port": 8080}
    assert span["remoteEndpoint"] == {"serviceName": "payments", "ipv6": "fe80::1", "port": 443}
    assert span["tags"] == {"host.name": "web-1", "http.method": "GET"}


def test_error_status_becomes_the_error_tag_and_the_status_tags():
    span = convert(status_code=STATUS_ERROR, status_message="card declined")
    assert span["tags"] == {"host.name": "web-1", "error": "true", "otel.status_code": "STATUS_CODE_ERROR",
                            "otel.status_description": "card declined"}


def test_an_error_attribute_without_error_status_is_removed():
    span = convert(status_code=STATUS_OK, span_attributes=[attr("error", False)])
    assert span["tags"] == {"host.name": "web-1", "otel.status_code": "STATUS_CODE_OK"}


def test_scope_trace_state_and_internal_kind_become_tags():
    span = convert(scope_name="io.opentelemetry.flask", scope_version="1.2", trace_state="rojo=00f067",
                   kind=SPAN_KIND_BY_NAME["internal"], scope_attributes=[attr("lib.flavour", "x")])
    assert "kind" not in span
    assert span["tags"] == {"host.name": "web-1", "lib.flavour": "x",
                            "otel.library.name": "io.opentelemetry.flask", "otel.library.version": "1.2",
                            "w3c.tracestate": "rojo=00f067", "span.kind": "internal"}


def test_events_become_annotations_with_their_attributes_as_json():
    events = [{"time_unix_nano": START + 10_000, "name": "cache miss", "attributes": [],
               "dropped_attributes_count": 0},
              {"time_unix_nano": START + 20_000, "name": "retry",
               "attributes": [attr("attempt", 2), attr("b", True)], "dropped_attributes_count": 1}]
    span = convert(events=events)
    assert span["annotations"] == [
        {"timestamp": START // 1000 + 10, "value": "cache miss"},
        {"timestamp": START // 1000 + 20, "value": 'retry|{"attempt":2,"b":true}|1'},
    ]


def test_links_become_numbered_tags():
    link = {"trace_id": TRACE, "span_id": PARENT, "trace_state": "", "attributes": [attr("k", "v")],
            "dropped_attributes_count": 0, "flags": 0}
    span = convert(links=[link])
    assert span["tags"]["otlp.link.0"] == f'{TRACE.hex()}|{PARENT.hex()}||{{"k":"v"}}|0'


@pytest.mark.parametrize(("resource", "service", "source"), [
    ([], "OTLPResourceNoServiceName", None),
    ([attr("faas.name", "resize")], "resize", "faas.name"),
])
def test_a_resource_without_service_name_falls_back_as_the_exporter_does(resource, service, source):
    span = convert(resource_attributes=resource)
    assert span["localEndpoint"] == {"serviceName": service}
    assert span.get("tags", {}).get("otlp.service.name.source") == source


# ---- spans that came in as Zipkin ---------------------------------------------------------------


ZIPKIN_FIXTURES = [FIXTURES / "zipkin-lens" / name for name in LENS_FILES] + [
    FIXTURES / "jaeger" / "zipkin-deser" / name for name in ("zipkin_01.json", "zipkin_02.json",
                                                               "zipkin_03.json")]


@pytest.mark.parametrize("path", ZIPKIN_FIXTURES, ids=lambda p: p.name)
def test_zipkin_spans_come_back_field_by_field_as_sent(path):
    sent = json.loads(path.read_text())
    returned = spans_to_zipkin(decode_zipkin_v2_json(path.read_bytes()))
    assert len(returned) == len(sent)
    for original, back in zip(sent, returned, strict=True):
        assert back == normalized(original)


@pytest.mark.parametrize("tags", [
    {"error": ""}, {"error": "true"}, {"error": "timeout"},
    {"otel.status_code": "OK"}, {"otel.status_code": "ERROR", "otel.status_description": "boom"},
])
def test_zipkin_status_tags_come_back_in_the_form_they_were_sent(tags):
    body = json.dumps([{"traceId": "a", "id": "b", "name": "x", "timestamp": 1_600_000_000_000_000,
                        "tags": {"http.path": "/", **tags}}]).encode()
    (span,) = spans_to_zipkin(decode_zipkin_v2_json(body))
    assert span["tags"] == {"http.path": "/", **tags}


def test_a_zipkin_span_without_timestamp_or_duration_stays_without():
    body = json.dumps([{"traceId": "a", "id": "b", "name": "x",
                        "annotations": [{"timestamp": 1_600_000_000_000_000, "value": "foo"},
                                        {"timestamp": 1_600_000_000_000_500, "value": "bar"}]}]).encode()
    (span,) = spans_to_zipkin(decode_zipkin_v2_json(body))
    assert "timestamp" not in span and "duration" not in span
    assert len(span["annotations"]) == 2


def test_ensure_root_gives_a_rootless_trace_its_earliest_orphan_as_root():
    trace = [{"id": "b", "parentId": "a", "timestamp": 2}, {"id": "c", "parentId": "b", "timestamp": 3},
             {"id": "d", "parentId": "x", "timestamp": 5}]
    fixed = ensure_root(trace)
    assert [s.get("parentId") for s in fixed] == [None, "b", "x"]
    assert ensure_root(fixed) == fixed  # a trace with a root is left alone
