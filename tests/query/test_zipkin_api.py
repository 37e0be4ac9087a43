"""The Zipkin v2 read API of a real ``spanlake serve``, route by route against ``zipkin2-api.yaml``,
with the zipkin-lens traces sent over Zipkin's own ingest route (moved to the last hour)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml

from tests.paths import FIXTURES
from tests.server import SpanlakeProcess
from tests.waiting import eventually
from tests.zipkin_data import LENS_FILES, lens_trace, normalized, shifted

NOW_US = time.time_ns() // 1000
API_DOC = yaml.safe_load((FIXTURES / "zipkin-api" / "zipkin2-api.yaml").read_text())
AUTOCOMPLETE_KEYS = ["http.method", "environment"]


def sent(name: str) -> list[dict[str, Any]]:
    """What the test sent for a fixture file: file i ends i+1 minutes ago (newest first in order)."""
    return shifted(lens_trace(name), NOW_US - (LENS_FILES.index(name) + 1) * 60_000_000)


def trace_id(name: str) -> str:
    return normalized(lens_trace(name)[0])["traceId"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SpanlakeProcess]:
    keys = ["--zipkin-autocomplete-keys", ",".join(AUTOCOMPLETE_KEYS)]
    process = SpanlakeProcess(tmp_path_factory.mktemp("zipkin") / "data", extra_args=keys).start()
    try:
        for name in LENS_FILES:
            response = httpx.post(f"{process.url('zipkin')}/api/v2/spans", json=sent(name), timeout=30)
            assert response.status_code == 202, (name, response.text)
        for name in LENS_FILES:
            url = f"{process.url('zipkin')}/api/v2/trace/{trace_id(name)}"
            eventually(lambda u=url: _ok(httpx.get(u)), timeout=15)
        yield process
    finally:
        process.stop()


def _ok(response: httpx.Response) -> httpx.Response:
    assert response.status_code == 200, response.text
    return response


def get(server: SpanlakeProcess, path: str, **params: Any) -> Any:
    response = httpx.get(f"{server.url('zipkin')}/api/v2{path}", params=params, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


def status(server: SpanlakeProcess, path: str, **params: Any) -> int:
    return httpx.get(f"{server.url('zipkin')}/api/v2{path}", params=params, timeout=30).status_code


def has_root(trace: list[dict[str, Any]]) -> bool:
    return any("parentId" not in span for span in trace)


def test_every_read_route_of_the_api_doc_is_served(server):
    paths = [p for p, ops in API_DOC["paths"].items() if "get" in ops]
    assert set(paths) == {"/services", "/spans", "/traces", "/trace/{traceId}", "/traceMany",
                          "/dependencies", "/autocompleteKeys", "/autocompleteValues"}
    messaging = trace_id("messaging.json")
    params = {"/spans": {"serviceName": "frontend"},
              "/traceMany": {"traceIds": f"{messaging},{trace_id('skew.json')}"},
              "/dependencies": {"endTs": NOW_US // 1000}, "/autocompleteValues": {"key": "http.method"}}
    for path in paths:
        get(server, path.replace("{traceId}", messaging), **params.get(path, {}))


def test_services_are_the_local_service_names_sorted(server):
    services = get(server, "/services")
    expected = {s["localEndpoint"]["serviceName"] for name in LENS_FILES for s in lens_trace(name)
                if s.get("localEndpoint", {}).get("serviceName")}
    assert expected <= set(services)
    assert services == sorted(services)


def test_spans_are_the_lower_cased_span_names_of_a_service(server):
    expected = sorted({s["name"].lower() for s in lens_trace("yelp.json")
                       if s.get("localEndpoint", {}).get("serviceName") == "yelp_main/api_proxy"})
    assert get(server, "/spans", serviceName="yelp_main/api_proxy") == expected
    assert get(server, "/spans", serviceName="no-such-service") == []


def test_remote_services_are_the_remote_endpoints_of_a_service(server):
    assert get(server, "/remoteServices", serviceName="frontend") == ["rabbitmq"]
    assert get(server, "/remoteServices", serviceName="backend") == ["rabbitmq"]


@pytest.mark.parametrize("path", ["/spans", "/remoteServices", "/autocompleteValues", "/traceMany",
                                  "/dependencies"])
def test_a_missing_required_parameter_is_a_400(server, path):
    response = httpx.get(f"{server.url('zipkin')}/api/v2{path}", timeout=30)
    assert response.status_code == 400
    assert response.text  # a message saying which parameter


def test_traces_with_no_parameters_uses_zipkins_defaults(server):
    traces = get(server, "/traces")
    assert len(traces) == 10  # limit 10, endTs now, lookback one day
    assert [t[0]["traceId"] for t in traces] == [trace_id(n) for n in LENS_FILES[:10]]  # newest first
    assert all(has_root(t) for t in traces)


def test_traces_by_service_and_lower_cased_span_name(server):
    traces = get(server, "/traces", serviceName="routing", spanName="post /location/update/v4")
    assert [t[0]["traceId"] for t in traces] == [trace_id("yelp.json")]
    assert get(server, "/traces", serviceName="frontend", spanName="no such span") == []


def test_traces_by_remote_service(server):
    traces = get(server, "/traces", serviceName="backend", remoteServiceName="rabbitmq")
    assert [t[0]["traceId"] for t in traces] == [trace_id("messaging.json")]


def test_annotation_query_matches_tags_annotations_and_tag_keys_on_one_span(server):
    yelp = [trace_id("yelp.json")]
    assert ids(get(server, "/traces", annotationQuery="py_zipkin.logging_end")) == yelp
    both = "cprofile_enabled=False and py_zipkin.logging_end"
    assert ids(get(server, "/traces", annotationQuery=both)) == yelp
    assert ids(get(server, "/traces", annotationQuery="cprofile_enabled and py_zipkin.logging_end")) == yelp
    assert get(server, "/traces", annotationQuery="cprofile_enabled=True") == []
    assert get(server, "/traces", annotationQuery="py_zipkin.logging_end and sql.query") == []


def test_annotation_query_error_finds_failed_spans(server):
    failed = {n for n in LENS_FILES if any("error" in s.get("tags", {}) for s in lens_trace(n))}
    found = ids(get(server, "/traces", annotationQuery="error", limit=100))
    assert set(found) == {trace_id(n) for n in failed}


def test_min_and_max_duration_are_microseconds_on_one_span(server):
    durations = {n: [s.get("duration", 0) for s in lens_trace(n)
                     if s.get("localEndpoint", {}).get("serviceName") == "servicea"] for n in LENS_FILES}
    longest = max(d for ds in durations.values() for d in ds)
    hits = ids(get(server, "/traces", serviceName="servicea", minDuration=longest))
    assert hits == [trace_id(n) for n in LENS_FILES if longest in durations[n]]
    middle = sorted({d for ds in durations.values() for d in ds})[1]
    expected = {trace_id(n) for n, ds in durations.items() if middle in ds}
    assert set(ids(get(server, "/traces", serviceName="servicea", minDuration=middle,
                       maxDuration=middle))) == expected
    assert get(server, "/traces", serviceName="servicea", minDuration=longest + 1,
               maxDuration=longest + 2) == []


def test_end_ts_and_lookback_bound_the_search_window(server):
    assert get(server, "/traces", endTs=NOW_US // 1000 - 3_600_000) == []
    # The newest file ends one minute ago: a two-minute window finds it alone.
    hits = ids(get(server, "/traces", endTs=NOW_US // 1000, lookback=90_000, limit=100))
    assert hits == [trace_id(LENS_FILES[0])]


@pytest.mark.parametrize("params", [{"limit": "0"}, {"limit": "many"}, {"endTs": "yesterday"},
                                    {"minDuration": "-5"}, {"lookback": "1h"}, {"endTs": str(10**20)},
                                    {"maxDuration": str(10**19)}, {"limit": str(10**6)}])
def test_malformed_search_parameters_are_a_400(server, params):
    assert status(server, "/traces", **params) == 400


def test_limit_caps_the_number_of_traces(server):
    assert len(get(server, "/traces", limit=3)) == 3


@pytest.mark.parametrize("name", LENS_FILES)
def test_a_posted_trace_reads_back_field_by_field(server, name):
    expected = [normalized(s) for s in sent(name) if "timestamp" in s]  # fragments merge into spans
    returned = get(server, f"/trace/{trace_id(name)}")
    assert sorted(returned, key=_order) == sorted(expected, key=_order)


def _order(span: dict[str, Any]) -> tuple[str, str, bool, int]:
    return span["id"], span.get("kind", ""), span.get("shared", False), span.get("timestamp", 0)


def ids(traces: list[list[dict[str, Any]]]) -> list[str]:
    return [t[0]["traceId"] for t in traces]


def test_trace_ids_of_16_and_32_hex_characters(server):
    short = trace_id("skew.json")  # a 64-bit trace ID
    assert len(short) == 16 and get(server, f"/trace/{short}")[0]["traceId"] == short
    assert get(server, f"/trace/{short.rjust(32, '0')}")[0]["traceId"] == short
    long = trace_id("messaging.json")
    assert len(long) == 32 and get(server, f"/trace/{long}")[0]["traceId"] == long
    assert status(server, "/trace/" + "e" * 32) == 404
    assert status(server, "/trace/not-hex") == 400


def test_huge_dependency_windows_are_a_400_not_a_server_error(server):
    assert status(server, "/dependencies", endTs=str(10**20)) == 400
    assert status(server, "/dependencies", endTs="1", lookback=str(10**20)) == 400


def test_trace_many_returns_the_found_traces(server):
    wanted = [trace_id("skew.json"), trace_id("messaging.json"), "f" * 16]
    assert ids(get(server, "/traceMany", traceIds=",".join(wanted))) == wanted[:2]
    assert status(server, "/traceMany", traceIds=wanted[0]) == 400  # at least two
    assert status(server, "/traceMany", traceIds=f"{wanted[0]},{wanted[0]}") == 400  # unique


def test_dependencies_link_services_in_the_window(server):
    links = get(server, "/dependencies", endTs=NOW_US // 1000, lookback=86_400_000)
    assert {"parent": "frontend", "child": "backend", "callCount": 1} in links
    assert all(set(link) == {"parent", "child", "callCount"} for link in links)
    assert get(server, "/dependencies", endTs=NOW_US // 1000 - 3_600_000, lookback=60_000) == []


def test_autocomplete_keys_are_the_configured_ones_and_values_come_from_the_data(server):
    assert get(server, "/autocompleteKeys") == AUTOCOMPLETE_KEYS
    methods = {s["tags"]["http.method"] for n in LENS_FILES for s in lens_trace(n)
               if "http.method" in s.get("tags", {})}
    assert get(server, "/autocompleteValues", key="http.method") == sorted(methods)
    assert get(server, "/autocompleteValues", key="http.path") == []  # not configured


def test_the_api_is_also_under_zipkin_on_both_ports(server):
    services = get(server, "/services")
    for base in (server.url("zipkin"), server.query_url):
        assert httpx.get(f"{base}/zipkin/api/v2/services").json() == services
        config = httpx.get(f"{base}/zipkin/config.json").json()
        assert config["queryLimit"] == 10 and config["searchEnabled"] is True


# ---- the exact requests Zipkin's UI (Lens 3.x) and Grafana's Zipkin datasource make ------------


def test_the_requests_lens_makes_from_search_to_trace_page(server):
    """The URLs zipkin-lens builds (src/constants/api.ts, slices/*, DiscoverPage buildApiQuery)."""
    lens = httpx.Client(base_url=f"{server.url('zipkin')}/zipkin", timeout=30)
    assert lens.get("/config.json").json()["defaultLookback"] == 900_000
    assert "frontend" in lens.get("/api/v2/services").json()
    assert lens.get("/api/v2/autocompleteKeys").json() == AUTOCOMPLETE_KEYS
    assert lens.get("/api/v2/remoteServices?serviceName=frontend").json() == ["rabbitmq"]
    assert "get /" in lens.get("/api/v2/spans?serviceName=frontend").json()
    end_ts = NOW_US // 1000
    traces = lens.get(f"/api/v2/traces?serviceName=frontend&spanName=get+%2F&endTs={end_ts}"
                      f"&lookback=86400000&limit=10").json()
    (trace,) = traces
    assert trace[0]["traceId"] == trace_id("messaging.json")  # Lens reads rawTrace[0].traceId
    page = lens.get(f"/api/v2/trace/{trace[0]['traceId']}").json()
    assert {s["name"] for s in page} == {"get /", "publish", "next-message", "on-message"}
    assert lens.get(f"/api/v2/dependencies?endTs={end_ts}&lookback=86400000").status_code == 200


def test_the_requests_grafanas_zipkin_datasource_makes(server):
    """pkg/tsdb/zipkin: health check, the three-level cascader, then the trace; every trace has a
    root span, which the cascader labels '<root.name> [<root.duration/1000> ms]'."""
    base = server.url("zipkin")
    assert isinstance(httpx.get(f"{base}/api/v2/services").json(), list)  # "Save & test"
    names = httpx.get(f"{base}/api/v2/spans", params={"serviceName": "frontend"}).json()
    traces = httpx.get(f"{base}/api/v2/traces",
                       params={"serviceName": "frontend", "spanName": names[0]}).json()
    assert traces
    for trace in traces:
        root = next(s for s in trace if "parentId" not in s)
        assert f"{root['name']} [{root['duration'] / 1000} ms]"
    assert httpx.get(f"{base}/api/v2/trace/{traces[0][0]['traceId']}").status_code == 200
