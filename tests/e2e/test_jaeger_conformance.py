"""Jaeger's storage conformance suite against a running ``spanlake serve``, through its HTTP APIs.

One server holds the OTLP form of the suite (``storage-integration/``, date-shifted as Jaeger's harness
does, sent alternately over OTLP HTTP/protobuf and gRPC) plus the suite's programmatic cases; each of the
25 ``queries.json`` cases is asked through ``GET /api/traces`` (Jaeger v1 parameters) and
``GET /api/v3/traces`` and must return exactly its traces, span for span. Two more servers take the
Jaeger-model form (``storage-integration-v1-model/``), one through Jaeger gRPC (14250) and one through
Jaeger Thrift over HTTP (14268).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import pytest

from spanlake.collector.formats.otlp import decode_otlp_json
from spanlake.collector.formats.proto import collector_pb2_grpc
from tests.e2e.otlp_build import (
    SpanSpec,
    build_request,
    fixture_request,
    send_grpc,
    send_http,
    shifted_fixture,
)
from tests.e2e.support import Json, eventually, get, v1_trace, v3_spans, v3_trace
from tests.jaeger_model import (
    otlp_fixture_differences,
    v1_trace_to_post_spans_requests,
    v1_trace_to_thrift_batches,
)
from tests.otlp_compare import canonical, otlp_json_to_request
from tests.paths import FIXTURES, JAEGER_SUITE
from tests.server import SpanlakeProcess
from tests.storage.jaeger_suite import shift_query_time, tag_text

V1_MODEL = FIXTURES / "jaeger" / "storage-integration-v1-model"
_EXPECTED = json.loads((JAEGER_SUITE / "EXPECTED.json").read_text())
OTLP_CASES = [c for c in _EXPECTED["storage-integration (OTLP, jaeger@8498073f)"]
              if c["file"] == "queries.json"]
V1_MODEL_CASES = [c for c in _EXPECTED["storage-integration-v1-model (Jaeger model JSON, jaeger@043b8265)"]
                  if c["file"] == "queries.json"]
SUITE_TRACES = sorted((JAEGER_SUITE / "traces").glob("*.json"))
# As Jaeger's harness: only the traces some case names (the v1-model ``default`` and ``example_trace``
# share trace ID ...11, and ``example_trace`` is no case's answer).
V1_MODEL_TRACES = [V1_MODEL / "traces" / f"{stem}.json"
                   for stem in dict.fromkeys(e["fixture"] for c in V1_MODEL_CASES for e in c["expected"])]

# The programmatic cases, a few minutes ago (inside every default window, apart from the fixtures).
NOW_NS = time.time_ns() - 5 * 60 * 10**9
BIG_TRACE = bytes.fromhex("e2e0" * 7 + "0001")
DUP_TRACE = bytes.fromhex("e2e0" * 7 + "0002")
CROSS_TRACES = [bytes.fromhex("e2e0" * 7 + f"00a{i}") for i in range(3)]  # services a, b share the tag
HELLO_WORLD = bytes.fromhex("e2e0" * 7 + "00e1")
WORLD_HELLO = [bytes.fromhex("e2e0" * 7 + f"00e{i}") for i in (2, 3, 4)]


def sid(n: int) -> bytes:
    return n.to_bytes(8, "big")


def programmatic_specs() -> list[SpanSpec]:
    specs = [SpanSpec(BIG_TRACE, sid(i + 1), "big-service", "big-op", None if i == 0 else sid(1),
                      NOW_NS + i * 1000) for i in range(10_008)]
    # Every 20th span reuses span ID 7, as a buggy client would; Jaeger keeps every one of them.
    specs += [SpanSpec(DUP_TRACE, sid(7 if i % 20 == 19 else i + 1), "dup-service", f"dup-{i}",
                       None if i == 0 else sid(1), NOW_NS + i * 1000) for i in range(200)]
    for trace, service, value in zip(CROSS_TRACES, ["service-a", "service-b", "service-c"],
                                     ["yes", "yes", "no"], strict=True):
        specs.append(SpanSpec(trace, sid(1), service, start_ns=NOW_NS,
                              attributes={"rfc0013.cross.service": value}))
    specs += [SpanSpec(HELLO_WORLD, sid(1), "hello", start_ns=NOW_NS),
              SpanSpec(HELLO_WORLD, sid(2), "world", parent=sid(1), start_ns=NOW_NS)]
    for trace in WORLD_HELLO:
        specs += [SpanSpec(trace, sid(1), "world", start_ns=NOW_NS),
                  SpanSpec(trace, sid(2), "hello", parent=sid(1), start_ns=NOW_NS),
                  SpanSpec(trace, sid(3), "hello", parent=sid(2), start_ns=NOW_NS)]  # same service: no link
    return specs


PROGRAMMATIC_SERVICES = {"big-service", "dup-service", "service-a", "service-b", "service-c", "hello",
                         "world"}


def _wait_for_traces(server: SpanlakeProcess, trace_ids: set[str]) -> None:
    def check() -> None:
        reply = get(server, "/api/traces", [("traceID", t) for t in sorted(trace_ids)] + [("raw", "true")])
        assert reply.status_code == 200, reply.text
        found = {t["traceID"].rjust(32, "0") for t in reply.json()["data"]}
        assert found == trace_ids, f"missing {sorted(trace_ids - found)}"

    eventually(check, timeout=20)


@pytest.fixture(scope="module")
def otlp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SpanlakeProcess]:
    server = SpanlakeProcess(tmp_path_factory.mktemp("otlp-suite") / "data").start()
    try:
        for i, path in enumerate(SUITE_TRACES):
            (send_http if i % 2 else send_grpc)(server, fixture_request(path))
        send_http(server, build_request(programmatic_specs()))
        expected = {tid for case in OTLP_CASES for e in case["expected"] for tid in e["trace_ids"]}
        _wait_for_traces(server, expected | {BIG_TRACE.hex(), DUP_TRACE.hex(), HELLO_WORLD.hex()})
        yield server
    finally:
        server.stop()


# ---- query parameters as the clients send them ------------------------------------------------------


def _rfc3339(ns: int) -> str:
    moment = dt.datetime.fromtimestamp(ns // 10**9, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{ns % 10**9:09d}Z"


def _tags(case: Json) -> str:
    return json.dumps({k: tag_text(v) for k, v in case["tags"].items()})


def v1_params(case: Json) -> dict[str, Any]:
    params: dict[str, Any] = {"service": case["service"], "limit": case["num_traces"],
                              "start": shift_query_time(case["start_min"]) // 1000,
                              "end": shift_query_time(case["start_max"]) // 1000}
    if case["operation"]:
        params["operation"] = case["operation"]
    if case["tags"]:
        params["tags"] = _tags(case)
    if case["duration_min"]:
        params["minDuration"] = f"{case['duration_min']}ns"
    if case["duration_max"]:
        params["maxDuration"] = f"{case['duration_max']}ns"
    return params


def v3_params(case: Json) -> dict[str, Any]:
    params: dict[str, Any] = {"query.serviceName": case["service"], "query.searchDepth": case["num_traces"],
                              "query.startTimeMin": _rfc3339(shift_query_time(case["start_min"])),
                              "query.startTimeMax": _rfc3339(shift_query_time(case["start_max"]))}
    if case["operation"]:
        params["query.operationName"] = case["operation"]
    if case["tags"]:
        params["query.attributes"] = _tags(case)
    if case["duration_min"]:
        params["query.durationMin"] = f"{case['duration_min']}ns"
    if case["duration_max"]:
        params["query.durationMax"] = f"{case['duration_max']}ns"
    return params


def expected_counts(case: Json) -> dict[str, int]:
    return {tid: e["spans"] for e in case["expected"] for tid in e["trace_ids"]}


def v1_search(server: SpanlakeProcess, params: Any) -> list[Json]:
    reply = get(server, "/api/traces", params)
    assert reply.status_code == 200, reply.text
    data: list[Json] = reply.json()["data"]
    return data


def v1_counts(traces: list[Json]) -> dict[str, int]:
    return {t["traceID"].rjust(32, "0"): len(t["spans"]) for t in traces}


def v3_search(server: SpanlakeProcess, params: Any) -> Json:
    reply = get(server, "/api/v3/traces", params)
    assert reply.status_code == 200, reply.text
    body: Json = reply.json()
    return body


def v3_counts(body: Json) -> dict[str, int]:
    counts: dict[str, int] = {}
    for span in v3_spans(body):
        counts[span["traceId"]] = counts.get(span["traceId"], 0) + 1
    return counts


# ---- the 25 cases of queries.json, OTLP form ------------------------------------------------------------


def test_suite_has_all_25_cases() -> None:
    assert len(OTLP_CASES) == 25 and len(V1_MODEL_CASES) == 22


@pytest.mark.parametrize("case", OTLP_CASES, ids=[c["caption"] for c in OTLP_CASES])
def test_v1_search_returns_exactly_the_expected_traces(otlp_server: SpanlakeProcess, case: Json) -> None:
    traces = v1_search(otlp_server, v1_params(case))
    assert v1_counts(traces) == expected_counts(case)
    fixture_spans = {(s["spanId"].lower(), s["name"])
                     for e in case["expected"] for s in _fixture_spans(e["fixture"])}
    assert {(s["spanID"], s["operationName"]) for t in traces for s in t["spans"]} == fixture_spans


@pytest.mark.parametrize("case", OTLP_CASES, ids=[c["caption"] for c in OTLP_CASES])
def test_v3_search_returns_the_expected_traces_unchanged(otlp_server: SpanlakeProcess, case: Json) -> None:
    body = v3_search(otlp_server, v3_params(case) | {"query.rawTraces": "true"})
    assert v3_counts(body) == expected_counts(case)
    # Content: what comes back is, field for field and attribute type for type, what was sent.
    sent = [span for e in case["expected"]
            for span in canonical(otlp_json_to_request(shifted_fixture(JAEGER_SUITE / "traces" /
                                                                       f"{e['fixture']}.json")))]
    assert canonical(otlp_json_to_request(body["result"])) == sorted(sent)


def _fixture_spans(stem: str) -> list[Json]:
    data = json.loads((JAEGER_SUITE / "traces" / f"{stem}.json").read_text())
    return [s for rs in data["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]


def test_v3_search_accepts_grafanas_snake_case_names(otlp_server: SpanlakeProcess) -> None:
    case = next(c for c in OTLP_CASES if c["caption"] == "Tags + Operation name + Duration range")
    params = {k.replace("query.serviceName", "query.service_name")
               .replace("query.operationName", "query.operation_name")
               .replace("query.startTimeMin", "query.start_time_min")
               .replace("query.startTimeMax", "query.start_time_max")
               .replace("query.durationMin", "query.duration_min")
               .replace("query.searchDepth", "query.num_traces"): v for k, v in v3_params(case).items()}
    assert v3_counts(v3_search(otlp_server, params)) == expected_counts(case)


# ---- Jaeger's programmatic cases -----------------------------------------------------------------------


def test_services_are_exactly_the_services_written(otlp_server: SpanlakeProcess) -> None:
    written = {a["value"]["stringValue"] for path in SUITE_TRACES
               for rs in json.loads(path.read_text())["resourceSpans"]
               for a in rs["resource"]["attributes"] if a["key"] == "service.name"}
    expected = written | PROGRAMMATIC_SERVICES
    assert {"example-service-1", "example-service-2", "example-service-3"} <= expected
    v1 = get(otlp_server, "/api/services").json()
    assert sorted(v1["data"]) == sorted(expected) and v1["total"] == len(expected)
    assert sorted(get(otlp_server, "/api/v3/services").json()["services"]) == sorted(expected)


def test_operations_are_listed_with_their_kinds(otlp_server: SpanlakeProcess) -> None:
    service = {"service": "example-service-1"}
    v1 = get(otlp_server, "/api/operations", service).json()
    assert sorted(v1["data"], key=lambda o: o["name"]) == [
        {"name": "example-operation-1", "spanKind": ""},
        {"name": "example-operation-3", "spanKind": "server"},
        {"name": "example-operation-4", "spanKind": "client"}]
    server_only = get(otlp_server, "/api/operations", service | {"spanKind": "server"}).json()["data"]
    assert server_only == [{"name": "example-operation-3", "spanKind": "server"}]
    legacy = get(otlp_server, "/api/services/example-service-1/operations").json()["data"]
    assert sorted(legacy) == ["example-operation-1", "example-operation-3", "example-operation-4"]
    v3 = get(otlp_server, "/api/v3/operations", service).json()["operations"]
    assert sorted(v3, key=lambda o: o["name"]) == [  # the v3 gateway reports no kind as "internal"
        {"name": "example-operation-1", "spanKind": "internal"},
        {"name": "example-operation-3", "spanKind": "server"},
        {"name": "example-operation-4", "spanKind": "client"}]
    v3_client = get(otlp_server, "/api/v3/operations", service | {"spanKind": "client"}).json()
    assert v3_client == {"operations": [{"name": "example-operation-4", "spanKind": "client"}]}


def test_trace_by_id_returns_the_whole_trace(otlp_server: SpanlakeProcess) -> None:
    trace = v1_trace(otlp_server, "0000000000000011")
    assert trace["traceID"] == "0000000000000011"  # high half zero: 16 hex digits
    assert len(trace["spans"]) == 5
    assert len(v1_trace(otlp_server, "11")["spans"]) == 5  # short IDs are accepted
    assert len(v3_trace(otlp_server, "00000000000000000000000000000011")) == 5


def test_unknown_trace_is_404_in_both_apis(otlp_server: SpanlakeProcess) -> None:
    v1 = get(otlp_server, "/api/traces/00000000000000000000000000dead00")
    assert v1.status_code == 404
    assert v1.json()["errors"] == [{"code": 404, "msg": "trace not found"}]
    v3 = get(otlp_server, "/api/v3/traces/00000000000000000000000000dead00")
    assert v3.status_code == 404
    assert v3.json()["error"]["httpCode"] == 404


def test_a_10008_span_trace_comes_back_whole(otlp_server: SpanlakeProcess) -> None:
    trace = v1_trace(otlp_server, BIG_TRACE.hex())
    assert len(trace["spans"]) == 10_008
    assert len({s["spanID"] for s in trace["spans"]}) == 10_008
    assert len(v3_trace(otlp_server, BIG_TRACE.hex())) == 10_008


def test_duplicate_span_ids_are_preserved(otlp_server: SpanlakeProcess) -> None:
    for spans in (v1_trace(otlp_server, DUP_TRACE.hex())["spans"],
                  v1_trace(otlp_server, DUP_TRACE.hex(), raw="true")["spans"]):
        assert len(spans) == 200
        assert len({s["spanID"] for s in spans}) == 190
        assert sum(s["spanID"] == sid(7).hex() for s in spans) == 11
    v3 = v3_trace(otlp_server, DUP_TRACE.hex())
    assert len(v3) == 200 and len({s["spanId"] for s in v3}) == 190


def test_search_without_a_service_name_searches_every_service(otlp_server: SpanlakeProcess) -> None:
    tags = json.dumps({"rfc0013.cross.service": "yes"})
    expected = {CROSS_TRACES[0].hex(), CROSS_TRACES[1].hex()}
    assert set(v1_counts(v1_search(otlp_server, {"tags": tags}))) == expected
    params = {"query.attributes": tags, "query.startTimeMin": _rfc3339(NOW_NS - 3600 * 10**9),
              "query.startTimeMax": _rfc3339(NOW_NS + 3600 * 10**9)}
    assert set(v3_counts(v3_search(otlp_server, params))) == expected


def test_dependencies_count_calls_between_services(otlp_server: SpanlakeProcess) -> None:
    # The window holds only the programmatic spans (the fixtures are a day or more old).
    params = {"endTs": time.time_ns() // 10**6, "lookback": 3600 * 1000}
    links = get(otlp_server, "/api/dependencies", params).json()["data"]
    assert sorted(links, key=lambda link: link["parent"]) == [
        {"parent": "hello", "child": "world", "callCount": 1},
        {"parent": "world", "child": "hello", "callCount": 3}]
    assert get(otlp_server, "/api/dependencies", params | {"service": "nobody"}).json()["data"] == []


# ---- the Jaeger-model form, through the Jaeger ingest paths --------------------------------------------


def _date_shift(text: str) -> str:
    yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    text = text.replace("2017-01-26", yesterday.isoformat())
    return text.replace("2017-01-25", (yesterday - dt.timedelta(days=1)).isoformat())


def _post_thrift(server: SpanlakeProcess) -> None:
    for path in V1_MODEL_TRACES:
        for body in v1_trace_to_thrift_batches(path, transform=_date_shift):
            reply = httpx.post(f"{server.url('jaeger_http')}/api/traces", content=body, timeout=30,
                               headers={"Content-Type": "application/x-thrift"})
            assert reply.status_code == 202, reply.text


def _post_grpc(server: SpanlakeProcess) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{server.ports['jaeger_grpc']}") as channel:
        stub = collector_pb2_grpc.CollectorServiceStub(channel)  # type: ignore[no-untyped-call]
        for path in V1_MODEL_TRACES:
            for request in v1_trace_to_post_spans_requests(path, transform=_date_shift):
                stub.PostSpans(request, timeout=30)


@pytest.fixture(scope="module", params=["jaeger-grpc", "jaeger-thrift-http"])
def v1_model_server(request: pytest.FixtureRequest,
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, SpanlakeProcess]]:
    path: str = request.param
    server = SpanlakeProcess(tmp_path_factory.mktemp(path) / "data").start()
    try:
        (_post_grpc if path == "jaeger-grpc" else _post_thrift)(server)
        _wait_for_traces(server, {t for c in V1_MODEL_CASES for e in c["expected"] for t in e["trace_ids"]})
        yield path, server
    finally:
        server.stop()


def _binary_as_base64(value: Any) -> Any:
    """The OTLP form of the suite as the Thrift path stores it: binary tags become base64 strings
    (Jaeger v2's mapping, ``collector/formats/jaeger_thrift.py``)."""
    if isinstance(value, dict):
        if set(value) == {"bytesValue"}:
            return {"stringValue": value["bytesValue"]}
        return {k: _binary_as_base64(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_binary_as_base64(v) for v in value]
    return value


@pytest.mark.parametrize("case", V1_MODEL_CASES, ids=[c["caption"] for c in V1_MODEL_CASES])
def test_jaeger_model_suite_through_jaeger_ingest(v1_model_server: tuple[str, SpanlakeProcess],
                                                  case: Json) -> None:
    path, server = v1_model_server
    assert v1_counts(v1_search(server, v1_params(case))) == expected_counts(case)
    body = v3_search(server, v3_params(case) | {"query.rawTraces": "true"})
    assert v3_counts(body) == expected_counts(case)
    # Content: each trace as the OTLP form of the suite has it, under the path's documented mapping.
    rows = decode_otlp_json(json.dumps(body["result"]).encode()).spans.to_pylist()
    for entry in case["expected"]:
        expected = shifted_fixture(JAEGER_SUITE / "traces" / f"{entry['fixture']}.json")
        if path == "jaeger-thrift-http":
            expected = _binary_as_base64(expected)
        (trace_id,) = entry["trace_ids"]
        trace_rows = [r for r in rows if r["trace_id"].hex() == trace_id]
        assert otlp_fixture_differences(trace_rows, expected) == []
