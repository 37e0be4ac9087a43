from __future__ import annotations

import base64
import json

import pytest

from spanlake.storage.attributes import attrs
from spanlake.storage.rows import spans_table
from tests.query.support import EXAMPLE_TRACE, MEMORY_FIXTURE, client_for, store_with, unsorted_trace_store
from tests.storage.memory import MemoryStore

EXAMPLE_ID = "0000000000000011"  # example_trace: 5 spans, services example-service-1/2/3
MEMORY_ID_1 = "00000000000000010000000000000000"  # memory-store fixture: high half 1, low half 0
MEMORY_ID_2 = "00000000000000020000000000000000"
FIXTURE_DAY_US = 1485449191639875  # 2017-01-26T16:46:31.639875Z, example_trace's start
WINDOW = {"start": FIXTURE_DAY_US - 3600 * 10**6, "end": FIXTURE_DAY_US + 6 * 3600 * 10**6}


@pytest.fixture(scope="module")
def client():
    return client_for(store_with(MEMORY_FIXTURE, EXAMPLE_TRACE))


def _ok(response):
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()


def _error(response, status, message):
    assert response.status_code == status
    # Jaeger writes errors with Go's http.Error: a JSON body sent as text/plain.
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert json.loads(response.text) == {
        "data": None,
        "total": 0,
        "limit": 0,
        "offset": 0,
        "errors": [{"code": status, "msg": message}],
    }


def test_services_envelope(client):
    assert _ok(client.get("/api/services")) == {
        "data": ["example-service-1", "example-service-2", "example-service-3", "service-x"],
        "total": 4,
        "limit": 0,
        "offset": 0,
        "errors": None,
    }


def test_services_of_empty_store_is_an_empty_list():
    assert _ok(client_for(MemoryStore()).get("/api/services"))["data"] == []


def test_legacy_operations_are_names_only(client):
    body = _ok(client.get("/api/services/example-service-1/operations"))
    assert sorted(body["data"]) == ["example-operation-1", "example-operation-3", "example-operation-4"]
    assert body["total"] == 3


def test_legacy_operations_unescape_the_service_name():
    store = MemoryStore()
    store.write(
        spans_table(
            [
                {
                    "trace_id": bytes(15) + b"\x01",
                    "span_id": bytes(7) + b"\x01",
                    "name": "op",
                    "start_time_unix_nano": 1,
                    "end_time_unix_nano": 2,
                    "resource_attributes": attrs({"service.name": "a/b c"}),
                }
            ]
        )
    )
    assert _ok(client_for(store).get("/api/services/a%2Fb%20c/operations"))["data"] == ["op"]


def test_operations_with_kinds(client):
    body = _ok(client.get("/api/operations", params={"service": "example-service-1"}))
    assert body["data"] == [
        {"name": "example-operation-1", "spanKind": ""},
        {"name": "example-operation-3", "spanKind": "server"},
        {"name": "example-operation-4", "spanKind": "client"},
    ]
    assert body["total"] == 3
    body = _ok(client.get("/api/operations", params={"service": "service-x", "spanKind": "producer"}))
    assert body["data"] == [{"name": "test-general-conversion-4", "spanKind": "producer"}]
    assert (
        _ok(client.get("/api/operations", params={"service": "service-x", "spanKind": "odd"}))["data"] == []
    )


def test_operations_need_a_service(client):
    _error(client.get("/api/operations"), 400, "parameter 'service' is required")


def test_trace_by_id(client):
    body = _ok(client.get(f"/api/traces/{EXAMPLE_ID}"))
    [trace] = body["data"]
    assert body["errors"] is None and trace["traceID"] == EXAMPLE_ID
    assert len(trace["spans"]) == 5
    services = {p["serviceName"] for p in trace["processes"].values()}
    assert services == {"example-service-1", "example-service-2", "example-service-3"}
    assert sorted(trace["processes"]) == ["p1", "p2", "p3"]


@pytest.mark.parametrize(
    "trace_id",
    [
        "11",
        "0011",
        "00000000000000000000000000000011",
        base64.b64encode(bytes(15) + b"\x11").decode(),
        base64.urlsafe_b64encode(bytes(7) + b"\x11").decode(),
    ],
)
def test_trace_id_forms_find_the_same_trace(client, trace_id):
    assert _ok(client.get(f"/api/traces/{trace_id}"))["data"][0]["traceID"] == EXAMPLE_ID


def test_full_width_trace_id_keeps_32_chars_and_upper_case_is_accepted(client):
    [trace] = _ok(client.get(f"/api/traces/{MEMORY_ID_1.upper()}"))["data"]
    assert trace["traceID"] == MEMORY_ID_1 and len(trace["spans"]) == 2


def test_unknown_trace_is_404(client):
    _error(client.get("/api/traces/abcdef"), 404, "trace not found")


def test_malformed_trace_id_is_400(client):
    response = client.get("/api/traces/not-a-trace-id!")
    assert response.status_code == 400 and "malformed trace ID" in response.json()["errors"][0]["msg"]


@pytest.mark.parametrize(
    "hints",
    [
        {"start": FIXTURE_DAY_US - 10**6, "end": FIXTURE_DAY_US + 10**6},  # Jaeger UI: µs
        {"start": FIXTURE_DAY_US // 1000 - 1000, "end": FIXTURE_DAY_US // 1000 + 1000},
    ],  # Grafana: ms
)
def test_trace_by_id_accepts_time_hints(client, hints):
    assert len(_ok(client.get(f"/api/traces/{EXAMPLE_ID}", params=hints))["data"][0]["spans"]) == 5


def test_bad_time_hint_is_400(client):
    _error(
        client.get(f"/api/traces/{EXAMPLE_ID}", params={"start": "yesterday"}),
        400,
        "unable to parse param 'start': strconv.ParseInt: parsing \"yesterday\": invalid syntax",
    )


def test_pretty_print_indents_the_same_body(client):
    pretty = client.get(f"/api/traces/{EXAMPLE_ID}", params={"prettyPrint": "true"})
    compact = client.get(f"/api/traces/{EXAMPLE_ID}")
    assert "\n    " in pretty.text and "\n" not in compact.text
    assert pretty.json() == compact.json()


def test_spans_are_sorted_by_start_unless_raw():
    client = client_for(unsorted_trace_store())
    names = [s["operationName"] for s in _ok(client.get("/api/traces/7"))["data"][0]["spans"]]
    raw = [s["operationName"] for s in _ok(client.get("/api/traces/7?raw=true"))["data"][0]["spans"]]
    assert names == ["s2", "s3", "s1"] and raw == ["s1", "s2", "s3"]


def test_several_trace_ids_report_the_missing_ones(client):
    body = _ok(
        client.get(
            "/api/traces", params=[("traceID", EXAMPLE_ID), ("traceID", "ff"), ("traceID", MEMORY_ID_2)]
        )
    )
    assert [t["traceID"] for t in body["data"]] == [EXAMPLE_ID, MEMORY_ID_2]
    assert body["errors"] == [{"msg": "trace not found", "traceID": "00000000000000ff"}]


def test_several_trace_ids_all_found_have_null_errors(client):
    body = _ok(client.get("/api/traces", params=[("traceID", EXAMPLE_ID), ("traceID", MEMORY_ID_1)]))
    assert len(body["data"]) == 2 and body["errors"] is None


def _search(client, **params):
    return _ok(client.get("/api/traces", params={**WINDOW, **params}))


def test_search_by_service_returns_complete_traces(client):
    body = _search(client, service="example-service-2")
    assert body == {"data": body["data"], "total": 0, "limit": 0, "offset": 0, "errors": None}
    [trace] = body["data"]
    assert trace["traceID"] == EXAMPLE_ID and len(trace["spans"]) == 5  # not only the matching span


def test_search_without_service_finds_every_service(client):
    ids = {t["traceID"] for t in _search(client)["data"]}
    assert ids == {EXAMPLE_ID, MEMORY_ID_1, MEMORY_ID_2}


def test_search_by_operation(client):
    ids = [
        t["traceID"]
        for t in _search(client, service="service-x", operation="test-general-conversion-4")["data"]
    ]
    assert ids == [MEMORY_ID_1]


def test_search_by_json_tags_matches_one_span(client):
    # memory-store fixture case: only trace ...0001 holds all of these on one span.
    tags = {
        "peer.service": "service-y",
        "temperature": "72.5",
        "error": "true",
        "event-x": "event-y",
        "scope.attributes.2": "attribute-y",
    }
    body = _search(client, service="service-x", operation="test-general-conversion-2", tags=json.dumps(tags))
    assert [t["traceID"] for t in body["data"]] == [MEMORY_ID_1]


def test_several_tags_params_and_legacy_tag_form_are_merged(client):
    params = [
        *WINDOW.items(),
        ("service", "service-x"),
        ("tags", '{"scope.attributes.2":"attribute-y"}'),
        ("tag", "peer.service:service-y"),
    ]
    ids = {t["traceID"] for t in _ok(client.get("/api/traces", params=params))["data"]}
    assert ids == {MEMORY_ID_1, MEMORY_ID_2}


def test_search_durations_are_go_strings(client):
    # example_trace spans last 100µs; memory-store spans 5µs.
    assert {t["traceID"] for t in _search(client, minDuration="50us")["data"]} == {EXAMPLE_ID}
    assert {t["traceID"] for t in _search(client, maxDuration="0.01ms")["data"]} == {MEMORY_ID_1, MEMORY_ID_2}
    assert _search(client, minDuration="1s")["data"] == []


def test_search_limit_caps_traces(client):
    assert len(_search(client, limit="1")["data"]) == 1


def test_search_results_are_most_recent_first(client):
    # the memory-store traces start 5 h after example_trace
    ids = [t["traceID"] for t in _search(client)["data"]]
    assert ids[-1] == EXAMPLE_ID


def test_search_with_no_match_is_200_with_empty_list(client):
    assert _search(client, service="nobody")["data"] == []


def test_default_search_window_is_the_last_48_hours(client):
    assert _ok(client.get("/api/traces", params={"service": "service-x"}))["data"] == []


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"tags": '{"a":1}'}, "malformed 'tags' parameter, expecting JSON map[string]string"),
        ({"tag": "nocolon"}, "malformed 'tag' parameter, expecting key:value"),
        ({"minDuration": "10"}, "unable to parse param 'minDuration': time: invalid duration \"10\""),
        ({"minDuration": "2s", "maxDuration": "1s"}, "'maxDuration' should be greater than 'minDuration'"),
        ({"limit": "many"}, "unable to parse param 'limit'"),
        ({"start": "1.5"}, "unable to parse param 'start'"),
        ({"raw": "maybe"}, "unable to parse param 'raw'"),
    ],
)
def test_bad_search_parameters_are_400(client, params, message):
    response = client.get("/api/traces", params={"service": "service-x", **params})
    assert response.status_code == 400
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.json()["errors"][0]["msg"].startswith(message)


def _dependency_store():
    def span(n, parent, service, start_ms):
        return {
            "trace_id": bytes(15) + b"\x42",
            "span_id": bytes(7) + bytes([n]),
            "parent_span_id": bytes(7) + bytes([parent]) if parent else None,
            "name": "call",
            "start_time_unix_nano": start_ms * 10**6,
            "end_time_unix_nano": start_ms * 10**6 + 1,
            "resource_attributes": attrs({"service.name": service}),
        }

    store = MemoryStore()
    store.write(
        spans_table(
            [
                span(1, 0, "hello", 1000),
                span(2, 1, "world", 1001),
                span(3, 2, "hello", 1002),
                span(4, 2, "hello", 1003),
                span(5, 2, "hello", 1004),
                span(6, 5, "db", 1005),
            ]
        )
    )
    return store


def test_dependencies_count_cross_service_calls():
    client = client_for(_dependency_store())
    body = _ok(client.get("/api/dependencies", params={"endTs": 2000, "lookback": 1500}))
    assert body == {
        "data": [
            {"parent": "hello", "child": "db", "callCount": 1},
            {"parent": "hello", "child": "world", "callCount": 1},
            {"parent": "world", "child": "hello", "callCount": 3},
        ],
        "total": 0,
        "limit": 0,
        "offset": 0,
        "errors": None,
    }


def test_dependencies_window_and_service_filter():
    client = client_for(_dependency_store())
    assert _ok(client.get("/api/dependencies", params={"endTs": 1003, "lookback": 1}))["data"] == [
        {"parent": "world", "child": "hello", "callCount": 2}
    ]
    body = _ok(client.get("/api/dependencies", params={"endTs": 2000, "lookback": 1500, "service": "db"}))
    assert body["data"] == [{"parent": "hello", "child": "db", "callCount": 1}]


def test_dependencies_default_window_ends_now():
    assert _ok(client_for(_dependency_store()).get("/api/dependencies"))["data"] == []


def test_bad_dependencies_parameter_is_400(client):
    _error(
        client.get("/api/dependencies", params={"endTs": "now"}),
        400,
        "unable to parse param 'endTs': strconv.ParseInt: parsing \"now\": invalid syntax",
    )


def test_transform_turns_uploaded_otlp_json_into_jaeger_traces(client):
    body = _ok(client.post("/api/transform", content=MEMORY_FIXTURE.read_bytes()))
    traces = {t["traceID"]: t for t in body["data"]}
    assert set(traces) == {MEMORY_ID_1, MEMORY_ID_2}
    span = next(s for s in traces[MEMORY_ID_1]["spans"] if s["operationName"] == "test-general-conversion-2")
    tags = {t["key"]: t for t in span["tags"]}
    assert tags["otel.scope.name"]["value"] == "testing-library-2"
    assert tags["error"] == {"key": "error", "type": "bool", "value": True}
    assert tags["span.kind"]["value"] == "server"
    assert span["references"][0] == {
        "refType": "CHILD_OF",
        "traceID": MEMORY_ID_1,
        "spanID": "0000000000000003",
    }


def test_transform_rejects_garbage(client):
    response = client.post("/api/transform", content=b"{not json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["msg"].startswith("cannot parse OTLP JSON")


def test_archive_acknowledges_a_stored_trace(client):
    assert _ok(client.post(f"/api/archive/{EXAMPLE_ID}")) == {
        "data": [],
        "total": 0,
        "limit": 0,
        "offset": 0,
        "errors": [],
    }


def test_archive_of_unknown_trace_is_404(client):
    _error(client.post("/api/archive/123"), 404, "trace not found")


def test_storage_failure_is_500_in_the_envelope():
    class Broken(MemoryStore):
        def get_services(self):
            raise OSError("disk on fire")

    response = client_for(Broken()).get("/api/services")
    assert response.status_code == 500 and "disk on fire" in response.json()["errors"][0]["msg"]


def _big_trace_store(spans, duplicate_every=0):
    rows = []
    for n in range(spans):
        span_id = n - 1 if duplicate_every and n % duplicate_every == 0 and n else n
        rows.append(
            {
                "trace_id": bytes(15) + b"\x99",
                "span_id": span_id.to_bytes(8, "big"),
                "name": f"op{n % 7}",
                "start_time_unix_nano": 10**18 + n * 1000,
                "end_time_unix_nano": 10**18 + n * 1000 + 500,
                "resource_attributes": attrs({"service.name": f"svc{n % 3}"}),
            }
        )
    store = MemoryStore()
    store.write(spans_table(rows))
    return store


def test_trace_with_duplicate_span_ids_keeps_every_span():
    [trace] = _ok(client_for(_big_trace_store(200, duplicate_every=20)).get("/api/traces/99"))["data"]
    assert len(trace["spans"]) == 200
    assert len({s["spanID"] for s in trace["spans"]}) == 191  # 9 reused IDs


def test_10008_span_trace_comes_back_whole():
    [trace] = _ok(client_for(_big_trace_store(10_008)).get("/api/traces/99"))["data"]
    assert len(trace["spans"]) == 10_008 and sorted(trace["processes"]) == ["p1", "p2", "p3"]


def test_legacy_tag_value_keeps_colons_and_ui_lookback_is_ignored():
    store = MemoryStore()
    store.write(
        spans_table(
            [
                {
                    "trace_id": bytes(15) + b"\x05",
                    "span_id": bytes(7) + b"\x01",
                    "name": "op",
                    "start_time_unix_nano": FIXTURE_DAY_US * 1000,
                    "end_time_unix_nano": FIXTURE_DAY_US * 1000 + 1,
                    "resource_attributes": attrs({"service.name": "svc"}),
                    "span_attributes": attrs({"url": "http://x:80/a"}),
                }
            ]
        )
    )
    params = {**WINDOW, "service": "svc", "tag": "url:http://x:80/a", "lookback": "custom", "maxDuration": ""}
    assert [t["traceID"] for t in _ok(client_for(store).get("/api/traces", params=params))["data"]] == [
        "0000000000000005"
    ]
