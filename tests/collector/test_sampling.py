from __future__ import annotations

import json
from pathlib import Path

import pytest

from spanlake.collector.sampling import (
    SamplingStrategies,
    StrategiesError,
    load_strategies,
    make_sampling_app,
)
from tests.query.client import TestClient

# Jaeger's documented strategies file example shape.
STRATEGIES = {
    "service_strategies": [
        {"service": "foo", "type": "probabilistic", "param": 0.8,
         "operation_strategies": [{"operation": "op1", "type": "probabilistic", "param": 0.2},
                                  {"operation": "op2", "type": "probabilistic", "param": 0.4},
                                  {"operation": "op3", "type": "ratelimiting", "param": 7}]},
        {"service": "bar", "type": "ratelimiting", "param": 5},
    ],
    "default_strategy": {"type": "probabilistic", "param": 0.5,
                         "operation_strategies": [{"operation": "/health", "type": "probabilistic",
                                                   "param": 0.0}]},
}


@pytest.fixture
def client() -> TestClient:
    return TestClient(make_sampling_app(SamplingStrategies.from_dict(STRATEGIES)))


def test_without_a_file_every_service_gets_probabilistic_one_in_a_thousand() -> None:
    client = TestClient(make_sampling_app(load_strategies(None)))
    response = client.get("/sampling", params={"service": "anything"})
    assert response.status_code == 200
    assert response.json() == {"strategyType": "PROBABILISTIC",
                               "probabilisticSampling": {"samplingRate": 0.001}}


def test_rate_limiting_service_strategy_inherits_default_operation_entries(client: TestClient) -> None:
    body = client.get("/sampling", params={"service": "bar"}).json()
    assert body["strategyType"] == "RATE_LIMITING"
    assert body["rateLimitingSampling"] == {"maxTracesPerSecond": 5}
    assert [op["operation"] for op in body["operationSampling"]["perOperationStrategies"]] == ["/health"]


def test_per_operation_strategies_are_served_with_default_operations_appended(client: TestClient) -> None:
    body = client.get("/sampling", params={"service": "foo"}).json()
    assert body["strategyType"] == "PROBABILISTIC"
    assert body["probabilisticSampling"] == {"samplingRate": 0.8}
    per_op = body["operationSampling"]
    assert per_op["defaultSamplingProbability"] == 0.8
    # op3 is rate limiting, which Jaeger cannot apply per operation, so it is skipped
    assert per_op["perOperationStrategies"] == [
        {"operation": "op1", "probabilisticSampling": {"samplingRate": 0.2}},
        {"operation": "op2", "probabilisticSampling": {"samplingRate": 0.4}},
        {"operation": "/health", "probabilisticSampling": {"samplingRate": 0.0}},
    ]


def test_unknown_service_gets_the_default_strategy(client: TestClient) -> None:
    body = client.get("/sampling", params={"service": "unknown"}).json()
    assert body["probabilisticSampling"] == {"samplingRate": 0.5}
    assert body["operationSampling"]["perOperationStrategies"][0]["operation"] == "/health"


@pytest.mark.parametrize("path", ["/", "/sampling", "/api/sampling", "/anything/else"])
def test_any_path_answers_as_jaeger_v2_does(client: TestClient, path: str) -> None:
    assert client.get(path, params={"service": "bar"}).json()["strategyType"] == "RATE_LIMITING"


@pytest.mark.parametrize("query", ["", "?service=a&service=b", "?other=x"])
def test_service_parameter_must_be_given_exactly_once(client: TestClient, query: str) -> None:
    response = client.get(f"/sampling{query}")
    assert response.status_code == 400
    assert response.text == "'service' parameter must be provided once"


def test_strategies_file_is_loaded(tmp_path: Path) -> None:
    path = tmp_path / "strategies.json"
    path.write_text(json.dumps(STRATEGIES))
    assert load_strategies(path).get("bar").rateLimitingSampling.maxTracesPerSecond == 5


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "cannot read sampling strategies"),
        ('{"default_strategy": {"type": "adaptive", "param": 1}}', "unknown type 'adaptive'"),
        ('{"service_strategies": [{"type": "probabilistic", "param": 1}]}', r"service_strategies\[0\]"),
        ('{"default_strategy": {"type": "probabilistic", "param": "high"}}', "'param' must be a number"),
    ],
)
def test_bad_strategies_file_names_the_file_and_the_entry(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "strategies.json"
    path.write_text(content)
    with pytest.raises(StrategiesError, match=message) as info:
        load_strategies(path)
    assert str(path) in str(info.value)
