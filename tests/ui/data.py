"""What the browser tests load into a real ``spanlake serve``: Jaeger's storage fixtures (dates moved to
yesterday, as Jaeger's own harness does) and a few generated traces whose shape the tests know."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from spanlake.storage.attributes import any_value_to_json
from tests.paths import JAEGER_SUITE

Json = dict[str, Any]
NS_PER_MS = 1_000_000
DAY_NS = 86_400 * 10**9
FIXTURE_DAY_NS = 1485388800 * 10**9  # 2017-01-26T00:00:00Z, the suite's "yesterday"

# The checkout trace: a known tree whose critical path is root -> GetCart -> SELECT cart and
# root -> PlaceOrder -> Charge (see CHECKOUT_SPANS); "auth.verify" and "log.write" run in the shadow of
# longer siblings, so they are off the path.
CHECKOUT_TRACE = "a1a1a1a1a1a1a1a1b2b2b2b2b2b2b2b2"
# (span id, parent, service, name, kind, start ms, end ms, error)
CHECKOUT_SPANS = [
    ("0000000000000001", None, "frontend", "GET /checkout", 2, 0, 100, False),
    ("0000000000000002", "0000000000000001", "frontend", "auth.verify", 1, 5, 8, False),
    ("0000000000000003", "0000000000000001", "cart", "GetCart", 2, 1, 30, False),
    ("0000000000000004", "0000000000000003", "db", "SELECT cart", 3, 10, 20, False),
    ("0000000000000005", "0000000000000001", "checkout", "PlaceOrder", 2, 40, 90, False),
    ("0000000000000006", "0000000000000005", "payment", "Charge", 2, 50, 60, True),
    ("0000000000000007", "0000000000000005", "checkout", "log.write", 1, 52, 58, False),
]
# PlaceOrder links (an OTLP span link) to this span of browse trace 0: its "db: SELECT items".
LINKED_SPAN = "0000000000000003"
CRITICAL = {"GET /checkout", "GetCart", "SELECT cart", "PlaceOrder", "Charge"}
# Service-map edges the generated traces create (parent service -> child service).
EDGES = {("frontend", "cart"), ("cart", "db"), ("frontend", "checkout"), ("checkout", "payment")}


def _attrs(d: dict[str, object]) -> list[Json]:
    return [{"key": k, "value": any_value_to_json(v)} for k, v in d.items()]


def _span(trace_id: str, span_id: str, parent: str | None, name: str, kind: int, start_ns: int, end_ns: int,
          error: bool, attributes: dict[str, object]) -> Json:
    span: Json = {"traceId": trace_id, "spanId": span_id, "name": name, "kind": kind,
                  "startTimeUnixNano": str(start_ns), "endTimeUnixNano": str(end_ns),
                  "attributes": _attrs(attributes),
                  "status": {"code": 2, "message": "card declined"} if error else {}}
    if parent:
        span["parentSpanId"] = parent
    return span


# Resource attributes as an OpenTelemetry SDK sends them; their dotted keys are long enough to wrap in
# the span detail's key column.
SDK_RESOURCE: dict[str, object] = {"telemetry.sdk.language": "python", "telemetry.sdk.name": "opentelemetry",
                                   "telemetry.sdk.version": "1.27.0",
                                   "deployment.environment.name": "ui-test"}


def _request(spans: list[tuple[str, Json]]) -> Json:
    """One OTLP/JSON request, one resource per service."""
    by_service: dict[str, list[Json]] = {}
    for service, span in spans:
        by_service.setdefault(service, []).append(span)
    return {"resourceSpans": [{
        "resource": {"attributes": _attrs({"service.name": svc, "host.name": f"{svc}-host-1",
                                           **SDK_RESOURCE})},
        "scopeSpans": [{"scope": {"name": "spanlake-ui-test", "version": "1.0"}, "spans": list_}],
    } for svc, list_ in by_service.items()]}


def checkout_trace(base_ns: int) -> Json:
    spans = []
    for span_id, parent, svc, name, kind, start, end, error in CHECKOUT_SPANS:
        attributes: dict[str, object] = {"component": svc}
        if name == "GET /checkout":
            attributes |= {"http.method": "GET", "http.route": "/checkout", "http.status_code": 200}
        if name == "SELECT cart":
            attributes |= {"db.system": "postgresql", "db.statement": "SELECT * FROM cart WHERE id = $1"}
        if name == "Charge":
            attributes |= {"payment.amount": 42.5, "payment.retried": True}
        span = _span(CHECKOUT_TRACE, span_id, parent, name, kind, base_ns + start * NS_PER_MS,
                     base_ns + end * NS_PER_MS, error, attributes)
        if name == "Charge":
            span["events"] = [{"timeUnixNano": str(base_ns + 52 * NS_PER_MS), "name": "retry",
                               "attributes": _attrs({"attempt": 2})}]
        if name == "PlaceOrder":
            span["links"] = [{"traceId": browse_trace_id(0), "spanId": LINKED_SPAN,
                              "attributes": _attrs({"link.reason": "same session"})}]
        spans.append((svc, span))
    return _request(spans)


HTTP_OK: dict[str, object] = {"http.method": "GET", "http.status_code": 200}


def browse_trace_id(i: int) -> str:
    return f"c3c3c3c3c3c3c3c3{i:016x}"


def browse_trace(i: int, base_ns: int) -> Json:
    """frontend GET /products -> cart ListItems -> db SELECT items, with varying durations."""
    tid = browse_trace_id(i)
    total = 20 + 10 * (i % 7)
    error = i % 5 == 4
    spans = [
        ("frontend", _span(tid, "0000000000000001", None, "GET /products", 2, base_ns,
                           base_ns + total * NS_PER_MS, False, HTTP_OK)),
        ("cart", _span(tid, "0000000000000002", "0000000000000001", "ListItems", 2, base_ns + NS_PER_MS,
                       base_ns + (total - 2) * NS_PER_MS, error, {"items": i})),
        ("db", _span(tid, "0000000000000003", "0000000000000002", "SELECT items", 3, base_ns + 2 * NS_PER_MS,
                     base_ns + (total - 4) * NS_PER_MS, False, {"db.system": "postgresql"})),
    ]
    return _request(spans)


def generated_requests(now_ns: int | None = None) -> list[Json]:
    now = now_ns if now_ns is not None else time.time_ns()
    out = [checkout_trace(now - 5 * 60 * 10**9)]
    out += [browse_trace(i, now - (30 - 2 * i) * 60 * 10**9) for i in range(12)]
    return out


def _shift(node: object, delta_ns: int) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("startTimeUnixNano", "endTimeUnixNano", "timeUnixNano") and isinstance(value, str):
                node[key] = str(int(value) + delta_ns)
            else:
                _shift(value, delta_ns)
    elif isinstance(node, list):
        for item in node:
            _shift(item, delta_ns)


def fixture_requests(now_ns: int | None = None) -> Iterator[Json]:
    """Every trace of Jaeger's storage suite, moved so that 2017-01-26 becomes yesterday (UTC)."""
    now = now_ns if now_ns is not None else time.time_ns()
    delta = (now // DAY_NS - 1) * DAY_NS - FIXTURE_DAY_NS
    for path in sorted(Path(JAEGER_SUITE, "traces").glob("*.json")):
        doc = json.loads(path.read_text())
        _shift(doc, delta)
        yield doc
