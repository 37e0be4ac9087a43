"""Helpers shared by the end-to-end tests: reading a running server back through its query APIs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx

from tests import waiting
from tests.server import SpanlakeProcess

T = TypeVar("T")
Json = dict[str, Any]


def eventually(check: Callable[[], T], timeout: float = 10.0) -> T:
    """``tests.waiting.eventually`` with a loaded CI box's slack: writes are visible "within about a
    second" of the ack."""
    return waiting.eventually(check, timeout)


def stored_bytes(data_dir: Path) -> int:
    """Bytes in the WAL and in segments: 0 while nothing was ever stored."""
    files = [*data_dir.glob("wal/*/*.wal"), *data_dir.glob("spans/**/*.parquet")]
    return sum(p.stat().st_size for p in files)


def get(server: SpanlakeProcess, path: str, params: Any = None) -> httpx.Response:
    return httpx.get(f"{server.query_url}{path}", params=params, timeout=30)


def v1_trace(server: SpanlakeProcess, trace_id: str, **params: str) -> Json:
    """``GET /api/traces/{id}``'s one trace; fails while the trace is not (yet) there."""
    reply = get(server, f"/api/traces/{trace_id}", params)
    assert reply.status_code == 200, reply.text
    (trace,) = reply.json()["data"]
    result: Json = trace
    return result


def v3_spans(body: Json) -> list[Json]:
    """Every span of an api_v3 ``{"result": TracesData}``, each with its ``_resource`` and ``_scope``."""
    return [span | {"_resource": rs.get("resource", {}), "_scope": ss.get("scope", {})}
            for rs in body["result"]["resourceSpans"]
            for ss in rs["scopeSpans"] for span in ss["spans"]]


def v3_trace(server: SpanlakeProcess, trace_id: str, **params: str) -> list[Json]:
    """``GET /api/v3/traces/{id}``'s spans; fails while the trace is not (yet) there."""
    reply = get(server, f"/api/v3/traces/{trace_id}", params)
    assert reply.status_code == 200, reply.text
    return v3_spans(reply.json())


def attributes(items: list[Json] | None) -> dict[str, Any]:
    """OTLP/JSON attributes as ``{key: AnyValue JSON}``."""
    return {a["key"]: a["value"] for a in items or []}


def v1_tags(items: list[Json] | None) -> dict[str, tuple[str, Any]]:
    """Jaeger v1 JSON tags as ``{key: (type, value)}``."""
    return {t["key"]: (t["type"], t["value"]) for t in items or []}


def service_of(trace: Json, span: Json) -> str:
    """A v1 span's service, through the trace's ``processes`` table."""
    name: str = trace["processes"][span["processID"]]["serviceName"]
    return name


def parent_of(span: Json) -> str | None:
    """A v1 span's parent span ID: its CHILD_OF reference, if any."""
    refs = [r["spanID"] for r in span["references"] if r["refType"] == "CHILD_OF"]
    return refs[0] if refs else None
