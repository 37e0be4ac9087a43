from __future__ import annotations

import json

import pytest

from spanlake.storage.attributes import attrs
from spanlake.storage.rows import spans_table
from tests.query.support import (
    EXAMPLE_TRACE,
    MEMORY_FIXTURE,
    SNAPSHOTS,
    client_for,
    store_with,
    unsorted_trace_store,
)
from tests.storage.memory import MemoryStore

EXAMPLE_ID = "00000000000000000000000000000011"
MEMORY_ID_1 = "00000000000000010000000000000000"
MEMORY_ID_2 = "00000000000000020000000000000000"
DAY = {"query.start_time_min": "2017-01-26T00:00:00Z", "query.start_time_max": "2017-01-27T00:00:00Z"}
DAY_CAMEL = {"query.startTimeMin": "2017-01-26T00:00:00Z", "query.startTimeMax": "2017-01-27T00:00:00Z"}


def snapshot(name):
    return json.loads((SNAPSHOTS / name).read_text())


@pytest.fixture(scope="module")
def client():
    return client_for(store_with(MEMORY_FIXTURE, EXAMPLE_TRACE))


def _snapshot_span_store():
    """What the upstream gateway test mocks for GetTrace/FindTraces: one bare span."""
    store = MemoryStore()
    store.write(
        spans_table(
            [
                {
                    "trace_id": bytes(15) + b"\x01",
                    "span_id": bytes(7) + b"\x02",
                    "name": "foobar",
                    "kind": 2,
                    "status_code": 2,
                    "start_time_unix_nano": 0,
                    "end_time_unix_nano": 0,
                    "service_name": "",
                    "resource_attributes": [],
                }
            ]
        )
    )
    return store


def test_get_services_snapshot():
    store = MemoryStore()
    store.write(
        spans_table(
            [
                {
                    "trace_id": bytes(15) + b"\x01",
                    "span_id": bytes(7) + b"\x01",
                    "name": "x",
                    "start_time_unix_nano": 1,
                    "end_time_unix_nano": 2,
                    "resource_attributes": attrs({"service.name": "foo"}),
                }
            ]
        )
    )
    assert client_for(store).get("/api/v3/services").json() == snapshot("GetServices.json")


def test_get_operations_snapshot():
    store = MemoryStore()
    rows = [
        {
            "trace_id": bytes(15) + b"\x01",
            "span_id": bytes(7) + bytes([k]),
            "name": name,
            "kind": k,
            "start_time_unix_nano": 1,
            "end_time_unix_nano": 2,
            "resource_attributes": attrs({"service.name": "foo"}),
        }
        for name, k in [("get_users", 2), ("call_db", 3)]
    ]
    store.write(spans_table(rows))
    client = client_for(store)
    expected = snapshot("GetOperations.json")
    assert (
        client.get("/api/v3/operations", params={"service": "foo", "spanKind": "server"}).json() == expected
    )
    assert (
        client.get("/api/v3/operations", params={"service": "foo", "span_kind": "server"}).json() == expected
    )


def test_get_trace_snapshot():
    response = client_for(_snapshot_span_store()).get("/api/v3/traces/1")
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    assert response.json() == snapshot("GetTrace.json")


def test_find_traces_snapshot():
    params = {
        "query.service_name": "",
        "query.startTimeMin": "1970-01-01T00:00:00Z",
        "query.startTimeMax": "1970-01-01T00:00:01Z",
    }
    assert client_for(_snapshot_span_store()).get("/api/v3/traces", params=params).json() == snapshot(
        "FindTraces.json"
    )


def test_find_trace_summaries_snapshot():
    store = MemoryStore()
    s = 10**9
    frontend = attrs({"service.name": "frontend"})
    store.write(
        spans_table(
            [
                {
                    "trace_id": bytes(15) + b"\x01",
                    "span_id": bytes(7) + b"\x01",
                    "name": "HTTP GET /",
                    "kind": 2,
                    "start_time_unix_nano": 1000 * s,
                    "end_time_unix_nano": 1001 * s,
                    "resource_attributes": frontend,
                },
                {
                    "trace_id": bytes(15) + b"\x01",
                    "span_id": bytes(7) + b"\x02",
                    "parent_span_id": bytes(7) + b"\x01",
                    "name": "db",
                    "status_code": 2,
                    "start_time_unix_nano": 1000 * s + 100,
                    "end_time_unix_nano": 1000 * s + 200,
                    "resource_attributes": frontend,
                },
            ]
        )
    )
    params = {
        "query.serviceName": "frontend",
        "query.startTimeMin": "1970-01-01T00:00:00Z",
        "query.startTimeMax": "1970-01-02T00:00:00Z",
    }
    assert client_for(store).get("/api/v3/trace-summaries", params=params).json() == snapshot(
        "FindTraceSummaries.json"
    )


def test_unspecified_operation_kind_is_reported_as_internal(client):
    body = client.get("/api/v3/operations", params={"service": "example-service-1"}).json()
    assert body == {
        "operations": [
            {"name": "example-operation-1", "spanKind": "internal"},
            {"name": "example-operation-3", "spanKind": "server"},
            {"name": "example-operation-4", "spanKind": "client"},
        ]
    }


def _trace_ids(result):
    return {
        span["traceId"] for rs in result["resourceSpans"] for ss in rs["scopeSpans"] for span in ss["spans"]
    }


def _span_count(result):
    return sum(len(ss["spans"]) for rs in result["resourceSpans"] for ss in rs["scopeSpans"])


@pytest.mark.parametrize(
    "trace_id", ["11", "0000000000000011", EXAMPLE_ID, "AAAAAAAAAAAAAAAAAAAAEQ==", "AAAAAAAAABE="]
)
def test_get_trace_id_forms(client, trace_id):
    result = client.get(f"/api/v3/traces/{trace_id}").json()["result"]
    assert _trace_ids(result) == {EXAMPLE_ID} and _span_count(result) == 5


@pytest.mark.parametrize(
    "spelling", [("startTime", "endTime", "rawTraces"), ("start_time", "end_time", "raw_traces")]
)
def test_get_trace_time_window_in_both_spellings(client, spelling):
    start, end, raw = spelling
    params = {start: "2017-01-26T00:00:00Z", end: "2017-01-27T00:00:00.000000001Z", raw: "true"}
    assert _span_count(client.get(f"/api/v3/traces/{EXAMPLE_ID}", params=params).json()["result"]) == 5


def test_get_unknown_trace_is_404_json(client):
    response = client.get("/api/v3/traces/1234")
    assert response.status_code == 404
    assert response.json() == {"error": {"httpCode": 404, "message": "No traces found"}}


def test_get_malformed_trace_id_is_400(client):
    response = client.get("/api/v3/traces/zz!")
    assert response.status_code == 400 and response.json()["error"]["httpCode"] == 400


@pytest.mark.parametrize("window", [DAY, DAY_CAMEL])
def test_find_traces_merges_all_matches_into_one_list(client, window):
    result = client.get("/api/v3/traces", params=window).json()["result"]
    assert _trace_ids(result) == {EXAMPLE_ID, MEMORY_ID_1, MEMORY_ID_2}
    assert _span_count(result) == 9


def test_find_traces_accepts_grafana_unencoded_offsets(client):
    # Grafana builds the URL by hand: "+01:00" reaches the server as " 01:00".
    url = (
        "/api/v3/traces?query.service_name=service-x&query.start_time_min=2017-01-26T01:00:00+01:00"
        "&query.start_time_max=2017-01-27T01:00:00.000000000+01:00"
    )
    assert _trace_ids(client.get(url).json()["result"]) == {MEMORY_ID_1, MEMORY_ID_2}


@pytest.mark.parametrize(
    "params",
    [
        {"query.serviceName": "service-x", "query.operationName": "test-general-conversion-2"},
        {"query.service_name": "service-x", "query.operation_name": "test-general-conversion-2"},
        {
            "query.operationName": "test-general-conversion-2",
            "query.attributes": json.dumps(
                {
                    "peer.service": "service-y",
                    "temperature": "72.5",
                    "error": "true",
                    "event-x": "event-y",
                    "scope.attributes.2": "attribute-y",
                }
            ),
        },
        {"query.serviceName": "service-x", "query.searchDepth": "1"},
        {"query.serviceName": "service-x", "query.num_traces": "1"},
        {"query.service_name": "service-x", "query.search_depth": "1"},
    ],
)
def test_find_traces_filters(client, params):
    result = client.get("/api/v3/traces", params={**DAY, **params}).json()["result"]
    assert len(_trace_ids(result)) == 1


@pytest.mark.parametrize(
    "names", [("query.durationMin", "query.durationMax"), ("query.duration_min", "query.duration_max")]
)
def test_find_traces_duration_filters(client, names):
    low, high = names
    assert _trace_ids(client.get("/api/v3/traces", params={**DAY, low: "50us"}).json()["result"]) == {
        EXAMPLE_ID
    }
    result = client.get("/api/v3/traces", params={**DAY, high: "10us"}).json()["result"]
    assert _trace_ids(result) == {MEMORY_ID_1, MEMORY_ID_2}


def test_find_traces_without_match_is_404(client):
    response = client.get("/api/v3/traces", params={**DAY, "query.serviceName": "nobody"})
    assert response.status_code == 404
    assert response.json() == {"error": {"httpCode": 404, "message": "No traces found"}}


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({}, "query.startTimeMin"),
        ({"query.startTimeMin": "2017-01-26T00:00:00Z"}, "query.startTimeMax"),
        ({**DAY, "query.start_time_max": "2017-01-25T00:00:00Z"}, "must not be before"),
        ({**DAY, "query.start_time_min": "yesterday"}, "RFC3339"),
        ({**DAY, "query.durationMin": "5"}, "query.durationMin"),
        ({**DAY, "query.durationMin": "2s", "query.durationMax": "1s"}, "query.durationMax"),
        ({**DAY, "query.attributes": "{bad"}, "query.attributes"),
        ({**DAY, "query.searchDepth": "-1"}, "query.searchDepth"),
        ({**DAY, "query.rawTraces": "perhaps"}, "query.rawTraces"),
    ],
)
def test_find_traces_bad_parameters_are_400(client, params, fragment):
    for path in ("/api/v3/traces", "/api/v3/trace-summaries"):
        response = client.get(path, params=params)
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["httpCode"] == 400 and fragment in error["message"]


def test_trace_summaries_of_fixture_traces(client):
    body = client.get("/api/v3/trace-summaries", params={**DAY, "query.serviceName": "service-x"}).json()
    summaries = {s["traceId"]: s for s in body["summaries"]}
    assert set(summaries) == {MEMORY_ID_1, MEMORY_ID_2}
    # every span of the memory-store fixture is an ERROR span whose parent is not in the trace
    assert summaries[MEMORY_ID_1] == {
        "traceId": MEMORY_ID_1,
        "minStartTimeUnixNano": "1485467191639875000",
        "maxEndTimeUnixNano": "1485467191639880000",
        "spanCount": 2,
        "errorSpanCount": 2,
        "orphanSpanCount": 2,
        "services": [{"name": "service-x", "spanCount": 2, "errorSpanCount": 2}],
    }


def test_operations_of_unknown_kind_or_service_are_empty(client):
    assert client.get("/api/v3/operations", params={"service": "service-x", "spanKind": "odd"}).json() == {
        "operations": []
    }
    assert client.get("/api/v3/operations", params={"service": "nobody"}).json() == {"operations": []}


def test_services_of_empty_store():
    assert client_for(MemoryStore()).get("/api/v3/services").json() == {"services": []}


def test_storage_failure_is_500_json():
    class Broken(MemoryStore):
        def get_services(self):
            raise OSError("disk on fire")

    response = client_for(Broken()).get("/api/v3/services")
    assert response.status_code == 500
    assert (
        response.json()["error"]["httpCode"] == 500 and "disk on fire" in response.json()["error"]["message"]
    )


def test_raw_traces_keep_storage_order_of_spans():
    client = client_for(unsorted_trace_store())

    def names(params):
        result = client.get("/api/v3/traces/7", params=params).json()["result"]
        return [s["name"] for rs in result["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]

    assert names({}) == ["s2", "s3", "s1"]
    assert names({"raw_traces": "true"}) == ["s1", "s2", "s3"]
