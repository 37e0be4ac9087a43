"""Jaeger's storage conformance queries (``queries.json``, 25 cases) asked through both query APIs.

The store holds every fixture trace, so each case must pick its expected traces out of all the others.
This checks that both routers translate the parameters the way Jaeger's clients mean them (µs times,
Go durations, JSON tags with every value a string, RFC 3339 windows) and return whole traces.
"""

from __future__ import annotations

import json

import pytest

from spanlake.query.ids import parse_trace_id
from spanlake.query.params import parse_rfc3339_nano
from tests.paths import JAEGER_SUITE
from tests.query.support import client_for, store_with

CASES = json.loads((JAEGER_SUITE / "EXPECTED.json").read_text())[
    "storage-integration (OTLP, jaeger@8498073f)"
]
QUERIES = [case for case in CASES if case["file"] == "queries.json"]


@pytest.fixture(scope="module")
def client():
    return client_for(store_with(*sorted((JAEGER_SUITE / "traces").glob("*.json"))))


def _expected(case):
    return {parse_trace_id(tid): e["spans"] for e in case["expected"] for tid in e["trace_ids"]}


def _tag_text(value):
    return value if isinstance(value, str) else json.dumps(value)  # true, 123, 72.5 as Jaeger prints them


def _v1_params(case):
    params = {
        "service": case["service"],
        "limit": case["num_traces"],
        "start": parse_rfc3339_nano(case["start_min"]) // 1000,
        "end": parse_rfc3339_nano(case["start_max"]) // 1000,
    }
    if case["operation"]:
        params["operation"] = case["operation"]
    if case["tags"]:
        params["tags"] = json.dumps({k: _tag_text(v) for k, v in case["tags"].items()})
    if case["duration_min"]:
        params["minDuration"] = f"{case['duration_min']}ns"
    if case["duration_max"]:
        params["maxDuration"] = f"{case['duration_max']}ns"
    return params


def _v3_params(case):
    params = {
        "query.serviceName": case["service"],
        "query.searchDepth": case["num_traces"],
        "query.startTimeMin": case["start_min"],
        "query.startTimeMax": case["start_max"],
    }
    if case["operation"]:
        params["query.operationName"] = case["operation"]
    if case["tags"]:
        params["query.attributes"] = json.dumps({k: _tag_text(v) for k, v in case["tags"].items()})
    if case["duration_min"]:
        params["query.durationMin"] = f"{case['duration_min']}ns"
    if case["duration_max"]:
        params["query.durationMax"] = f"{case['duration_max']}ns"
    return params


def test_suite_has_all_25_cases():
    assert len(QUERIES) == 25


@pytest.mark.parametrize("case", QUERIES, ids=[c["caption"] for c in QUERIES])
def test_v1_search(client, case):
    response = client.get("/api/traces", params=_v1_params(case))
    assert response.status_code == 200, response.text
    found = {parse_trace_id(t["traceID"]): len(t["spans"]) for t in response.json()["data"]}
    assert found == _expected(case)


@pytest.mark.parametrize("case", QUERIES, ids=[c["caption"] for c in QUERIES])
def test_v3_search(client, case):
    response = client.get("/api/v3/traces", params=_v3_params(case))
    assert response.status_code == 200, response.text
    found: dict[bytes, int] = {}
    for rs in response.json()["result"]["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for span in ss["spans"]:
                key = parse_trace_id(span["traceId"])
                found[key] = found.get(key, 0) + 1
    assert found == _expected(case)
