from __future__ import annotations

import numpy as np
import pytest
from fastapi import FastAPI
from starlette.datastructures import QueryParams

from spanlake.query import spm
from spanlake.storage.attributes import attrs
from spanlake.storage.rows import spans_table
from tests.query.client import TestClient
from tests.storage.memory import MemoryStore

END_MS = 1_700_000_000_000  # 2023-11-14T22:13:20Z
MS = 1_000_000


def _span(n, service, name, start_ms, duration_ms, kind=2, status=0):
    start = start_ms * MS
    return {
        "trace_id": bytes(15) + bytes([n]),
        "span_id": bytes(7) + bytes([n]),
        "name": name,
        "kind": kind,
        "status_code": status,
        "start_time_unix_nano": start,
        "end_time_unix_nano": start + duration_ms * MS,
        "resource_attributes": attrs({"service.name": service}),
    }


@pytest.fixture(scope="module")
def client():
    store = MemoryStore()
    store.write(
        spans_table(
            [
                # window (END-60s, END-30s]: two calls of GET /a, one an error
                _span(1, "cart", "GET /a", END_MS - 50_000, 10),
                _span(2, "cart", "GET /a", END_MS - 40_000, 30, status=2),
                # window (END-30s, END]: POST /b three times, GET /a once
                _span(3, "cart", "POST /b", END_MS - 20_000, 100),
                _span(4, "cart", "POST /b", END_MS - 10_000, 200),
                _span(5, "cart", "POST /b", END_MS, 300),
                _span(6, "cart", "GET /a", END_MS - 5_000, 50),
                # not a server span, and another service: excluded by the default filters
                _span(7, "cart", "SELECT", END_MS - 5_000, 1_000, kind=3),
                _span(8, "web", "GET /", END_MS - 5_000, 1_000),
            ]
        )
    )
    app = FastAPI()
    app.include_router(spm.router(store))
    return TestClient(app)


WINDOW = {"service": "cart", "endTs": END_MS, "lookback": 60_000, "step": 30_000, "ratePer": 30_000}
TIMES = ["2023-11-14T22:12:20Z", "2023-11-14T22:12:50Z", "2023-11-14T22:13:20Z"]


def _points(metric):
    return [(p["timestamp"], p["gaugeValue"]["doubleValue"]) for p in metric["metricPoints"]]


def test_call_rate_per_service_is_calls_per_second_over_rate_window(client):
    body = client.get("/api/metrics/calls", params=WINDOW).json()
    assert body["name"] == "service_call_rate" and body["type"] == "GAUGE"
    assert body["help"] == "calls/sec, grouped by service"
    [metric] = body["metrics"]
    assert metric["labels"] == [{"name": "service_name", "value": "cart"}]
    assert _points(metric) == [(TIMES[0], 0.0), (TIMES[1], 2 / 30), (TIMES[2], 4 / 30)]


def test_latency_quantile_in_milliseconds_skips_empty_windows(client):
    body = client.get("/api/metrics/latencies", params={**WINDOW, "quantile": "0.5"}).json()
    assert body["name"] == "service_latencies"
    assert body["help"] == "0.5th quantile latency, grouped by service"
    [metric] = body["metrics"]
    assert _points(metric) == [(TIMES[1], 20.0), (TIMES[2], 150.0)]


def test_error_rate_is_fraction_of_calls(client):
    [metric] = client.get("/api/metrics/errors", params=WINDOW).json()["metrics"]
    assert _points(metric) == [(TIMES[1], 0.5), (TIMES[2], 0.0)]


def test_group_by_operation_labels_operation_first(client):
    body = client.get(
        "/api/metrics/latencies", params={**WINDOW, "quantile": "0.95", "groupByOperation": "true"}
    ).json()
    assert body["name"] == "service_operation_latencies"
    assert body["help"] == "0.95th quantile latency, grouped by service & operation"
    by_op = {m["labels"][0]["value"]: m for m in body["metrics"]}
    assert [m["labels"] for m in body["metrics"]] == [
        [{"name": "operation", "value": op}, {"name": "service_name", "value": "cart"}]
        for op in ("GET /a", "POST /b")
    ]
    assert _points(by_op["POST /b"]) == [(TIMES[2], pytest.approx(290.0))]


def test_span_kind_selects_other_kinds_in_both_spellings(client):
    for kind in ("client", "SPAN_KIND_CLIENT"):
        [metric] = client.get("/api/metrics/calls", params={**WINDOW, "spanKind": kind}).json()["metrics"]
        assert _points(metric)[-1] == (TIMES[2], 1 / 30)


def test_several_services_get_one_series_each(client):
    body = client.get("/api/metrics/calls", params={**WINDOW, "service": ["cart", "web"]}).json()
    assert [m["labels"][0]["value"] for m in body["metrics"]] == ["cart", "web"]


def test_unknown_service_gives_no_series(client):
    assert client.get("/api/metrics/calls", params={**WINDOW, "service": "nope"}).json()["metrics"] == []


def test_defaults_are_jaegers():
    query = spm.parse_metrics_query(QueryParams("service=cart"), now_ms=END_MS, with_quantile=False)
    assert (query.end_ms, query.lookback_ms, query.step_ms, query.rate_per_ms) == (
        END_MS,
        3_600_000,
        5_000,
        600_000,
    )
    assert query.span_kinds == [2] and not query.group_by_operation
    assert len(query.times_ms()) == 721


@pytest.mark.parametrize(
    ("path", "params", "message"),
    [
        ("calls", {}, "please provide at least one service name"),
        ("latencies", {"service": "cart"}, "please provide a quantile between (0, 1]"),
        ("latencies", {"service": "cart", "quantile": "1.5"}, "please provide a quantile between (0, 1]"),
        ("calls", {"service": "cart", "spanKind": "sideways"}, "unsupported span kind: 'sideways'"),
        (
            "calls",
            {"service": "cart", "endTs": "soon"},
            "unable to parse param 'endTs': strconv.ParseInt: parsing \"soon\": invalid syntax",
        ),
        ("calls", {"service": "cart", "step": "0"}, "unable to parse param 'step'"),
        ("calls", {"service": "cart", "lookback": "86400000", "step": "1"}, "exceeded maximum resolution"),
    ],
)
def test_bad_parameters_give_jaeger_error_envelope(client, path, params, message):
    response = client.get(f"/api/metrics/{path}", params=params)
    assert response.status_code == 400
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    [error] = response.json()["errors"]
    assert error["code"] == 400 and error["msg"].startswith(message)


def test_unknown_metric_is_not_found(client):
    assert client.get("/api/metrics/minstep").status_code == 404


def test_storage_failure_is_500_in_the_envelope():
    class Broken(MemoryStore):
        def scan_spans(self, *args, **kwargs):
            raise OSError("disk on fire")

    app = FastAPI()
    app.include_router(spm.router(Broken()))
    response = TestClient(app).get("/api/metrics/calls", params=WINDOW)
    assert response.status_code == 500 and "disk on fire" in response.json()["errors"][0]["msg"]


def test_quantile_of_a_busy_window_is_estimated_closely():
    values = np.random.default_rng(7).exponential(100.0, 200_000)
    assert spm._quantile(values, 0.95) == pytest.approx(np.quantile(values, 0.95), rel=0.02)
    assert spm._quantile(values[:1000], 0.5) == np.quantile(values[:1000], 0.5)  # small windows: exact


@pytest.mark.parametrize("q", [0.5, 0.75, 0.95, 0.99, 1.0])
@pytest.mark.parametrize("n", [1, 2, 3, 10, 1001])
def test_quantile_matches_numpy_linear_interpolation(q, n):
    values = np.random.default_rng(n).exponential(10.0, n)
    assert spm._quantile(values, q) == pytest.approx(float(np.quantile(values, q)), rel=1e-12)
