"""Jaeger remote sampling: strategies from a Jaeger strategies file, served as Jaeger serves them.

The file format is Jaeger's (``{"default_strategy": {...}, "service_strategies": [...]}``, each strategy
``{"type": "probabilistic"|"ratelimiting", "param": N, "operation_strategies": [...]}``); without a
file every service gets probabilistic 0.001, Jaeger's default. ``make_sampling_app`` is the port-5778
endpoint: ``GET /sampling?service=NAME`` (any path, as Jaeger v2 mounts it at ``/``), answering
proto-JSON with ``strategyType`` as a string, which is what Jaeger SDKs parse.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from google.protobuf import json_format

from spanlake.collector.formats.proto import sampling_pb2

DEFAULT_SAMPLING_PROBABILITY = 0.001  # Jaeger's file provider default
SERVICE_PARAM_ERROR = "'service' parameter must be provided once"

Strategy = sampling_pb2.SamplingStrategyResponse


class StrategiesError(ValueError):
    """A strategies file Jaeger would reject; the message names the file and the entry."""


def _probabilistic(rate: float) -> Strategy:
    return Strategy(strategyType=sampling_pb2.PROBABILISTIC,
                    probabilisticSampling=sampling_pb2.ProbabilisticSamplingStrategy(samplingRate=rate))


@dataclass
class SamplingStrategies:
    """The strategy for each service, and the default for every other service."""

    default: Strategy = field(default_factory=lambda: _probabilistic(DEFAULT_SAMPLING_PROBABILITY))
    services: dict[str, Strategy] = field(default_factory=dict)

    def get(self, service: str) -> Strategy:
        return self.services.get(service, self.default)

    def to_json(self, service: str) -> dict[str, Any]:
        """Jaeger's proto-JSON: camelCase members, enums as names, unset messages left out."""
        out: dict[str, Any] = json_format.MessageToDict(
            self.get(service), always_print_fields_with_no_presence=True)
        return out

    @classmethod
    def from_dict(cls, obj: Any, source: str = "strategies") -> SamplingStrategies:
        if not isinstance(obj, dict):
            raise StrategiesError(f"{source}: expected a JSON object")
        default = _probabilistic(DEFAULT_SAMPLING_PROBABILITY)
        if obj.get("default_strategy") is not None:
            default = _service_strategy(obj["default_strategy"], f"{source}: default_strategy")
        services: dict[str, Strategy] = {}
        for i, entry in enumerate(obj.get("service_strategies") or []):
            where = f"{source}: service_strategies[{i}]"
            if not isinstance(entry, dict) or not isinstance(entry.get("service"), str):
                raise StrategiesError(f"{where}: needs a 'service' name")
            services[entry["service"]] = _merge_default_operations(_service_strategy(entry, where), default)
        return cls(default, services)


def load_strategies(path: str | Path | None) -> SamplingStrategies:
    """Strategies from a Jaeger strategies file; Jaeger's defaults when ``path`` is None."""
    if path is None:
        return SamplingStrategies()
    try:
        obj = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise StrategiesError(f"{path}: cannot read sampling strategies: {exc}") from None
    return SamplingStrategies.from_dict(obj, str(path))


def _strategy(obj: Any, where: str) -> Strategy:
    if not isinstance(obj, dict):
        raise StrategiesError(f"{where}: expected an object")
    kind, param = obj.get("type"), obj.get("param", 0)
    if not isinstance(param, int | float) or isinstance(param, bool):
        raise StrategiesError(f"{where}: 'param' must be a number")
    if kind == "probabilistic":
        return _probabilistic(float(param))
    if kind == "ratelimiting":
        return Strategy(strategyType=sampling_pb2.RATE_LIMITING,
                        rateLimitingSampling=sampling_pb2.RateLimitingSamplingStrategy(
                            maxTracesPerSecond=int(param)))
    # Jaeger logs unknown types and falls back to its default; we do the same but loudly at load.
    raise StrategiesError(f"{where}: unknown type {kind!r} (probabilistic or ratelimiting)")


def _service_strategy(obj: Any, where: str) -> Strategy:
    strategy = _strategy(obj, where)
    operations = obj.get("operation_strategies") or []
    if not operations:
        return strategy
    per_op = sampling_pb2.PerOperationSamplingStrategies(defaultSamplingProbability=(
        strategy.probabilisticSampling.samplingRate
        if strategy.strategyType == sampling_pb2.PROBABILISTIC else DEFAULT_SAMPLING_PROBABILITY))
    for i, op in enumerate(operations):
        op_where = f"{where}.operation_strategies[{i}]"
        op_strategy = _strategy(op, op_where)
        if op_strategy.strategyType != sampling_pb2.PROBABILISTIC:
            continue  # Jaeger: per-operation strategies can only be probabilistic; it skips others
        if not isinstance(op.get("operation"), str):
            raise StrategiesError(f"{op_where}: needs an 'operation' name")
        per_op.perOperationStrategies.add(operation=op["operation"],
                                          probabilisticSampling=op_strategy.probabilisticSampling)
    strategy.operationSampling.CopyFrom(per_op)
    return strategy


def _merge_default_operations(strategy: Strategy, default: Strategy) -> Strategy:
    """Jaeger applies the default strategy's per-operation entries to every service strategy:
    appended where the service does not name the operation itself."""
    if not default.HasField("operationSampling") or not default.operationSampling.perOperationStrategies:
        return strategy
    if not strategy.HasField("operationSampling"):
        strategy.operationSampling.CopyFrom(default.operationSampling)
        if strategy.strategyType == sampling_pb2.PROBABILISTIC:
            rate = strategy.probabilisticSampling.samplingRate
            strategy.operationSampling.defaultSamplingProbability = rate
        return strategy
    named = {op.operation for op in strategy.operationSampling.perOperationStrategies}
    for op in default.operationSampling.perOperationStrategies:
        if op.operation not in named:
            strategy.operationSampling.perOperationStrategies.add().CopyFrom(op)
    return strategy


def sampling_response(strategies: SamplingStrategies, request: Request) -> Response:
    """The answer to one sampling request; shared by port 5778 and ``/api/sampling`` on 14268."""
    services = request.query_params.getlist("service")
    if len(services) != 1:
        return PlainTextResponse(SERVICE_PARAM_ERROR, status_code=400)
    return JSONResponse(strategies.to_json(services[0]))


def make_sampling_app(strategies: SamplingStrategies) -> FastAPI:
    """The port-5778 app: any GET path with ``?service=NAME``."""
    app = FastAPI(title="spanlake sampling", openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/{path:path}")
    def sampling(request: Request) -> Response:
        return sampling_response(strategies, request)

    return app
