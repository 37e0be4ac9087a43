"""Trace graph tab: one node per (service, operation), call counts on edges, the critical path marked."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.ui.conftest import save_screenshot
from tests.ui.data import CHECKOUT_SPANS, CHECKOUT_TRACE, CRITICAL

pytestmark = pytest.mark.browser
CRITICAL_CLASS = re.compile(r"\bis-critical\b")


def open_graph(page: Page, trace_id: str) -> None:
    page.goto(f"/trace/{trace_id}")
    expect(page.locator(".trace-page[data-ready=true]")).to_be_attached()
    page.get_by_role("tab", name="Trace graph").click()
    expect(page.locator("svg.trace-graph")).to_be_visible()


def node(page: Page, service: str, operation: str):
    return page.locator(f'svg.trace-graph g.tg-node[data-service="{service}"][data-operation="{operation}"]')


def test_checkout_graph_has_a_node_per_operation_and_marks_the_critical_path(page: Page) -> None:
    open_graph(page, CHECKOUT_TRACE)
    graph = page.locator("svg.trace-graph")
    expect(graph.locator("g.tg-node")).to_have_count(len(CHECKOUT_SPANS))
    critical = graph.locator("g.tg-node.is-critical").evaluate_all("els => els.map(e => e.dataset.operation)")
    assert set(critical) == CRITICAL
    # Parent -> child calls, each once; the path the latency waited on runs through four of them.
    edges = graph.locator("g.tg-edge").evaluate_all(
        "els => els.map(e => [e.dataset.from, e.dataset.to, e.dataset.calls,"
        " e.classList.contains('is-critical')])")
    by_pair = {(a, b): (int(calls), crit) for a, b, calls, crit in edges}
    assert len(by_pair) == len(CHECKOUT_SPANS) - 1
    assert by_pair[("frontend: GET /checkout", "cart: GetCart")] == (1, True)
    assert by_pair[("cart: GetCart", "db: SELECT cart")] == (1, True)
    assert by_pair[("checkout: PlaceOrder", "payment: Charge")] == (1, True)
    assert by_pair[("frontend: GET /checkout", "frontend: auth.verify")] == (1, False)
    assert by_pair[("checkout: PlaceOrder", "checkout: log.write")] == (1, False)
    save_screenshot(page, "trace-graph", docs_name="trace-graph.png")


def fan_out_trace() -> dict[str, object]:
    """api GET /orders calls db SELECT three times and cache GET twice; each SELECT calls db fetch once."""
    tid = "0000000000000fa0"
    t0 = 1_700_000_000_000_000
    spans = [("01", None, "api", "GET /orders", 0, 1000)]
    for k in range(3):
        spans.append((f"1{k}", "01", "db", "SELECT", 100 + 200 * k, 150))
        spans.append((f"3{k}", f"1{k}", "db", "fetch", 110 + 200 * k, 100))
    # The cache calls run while the first SELECT does, so the trace never waits for them.
    spans += [(f"2{k}", "01", "cache", "GET", 120 + 10 * k, 5) for k in range(2)]
    processes = {svc: {"serviceName": svc, "tags": []} for svc in ("api", "db", "cache")}

    def ref(parent: str | None) -> list[dict[str, str]]:
        if not parent:
            return []
        return [{"refType": "CHILD_OF", "traceID": tid, "spanID": f"{int(parent, 16):016x}"}]

    return {"data": [{"traceID": tid, "processes": processes, "warnings": None, "spans": [
        {"traceID": tid, "spanID": f"{int(sid, 16):016x}", "operationName": name, "references": ref(parent),
         "startTime": t0 + start, "duration": duration, "tags": [], "logs": [], "processID": svc,
         "warnings": None}
        for sid, parent, svc, name, start, duration in spans]}]}


def test_repeated_calls_become_one_node_with_a_count(page: Page, tmp_path: Path) -> None:
    path = tmp_path / "fan-out.json"
    path.write_text(json.dumps(fan_out_trace()))
    page.goto("/open")
    page.locator("input[type=file]").set_input_files(str(path))
    expect(page.locator(".trace-page[data-ready=true]")).to_be_attached()
    page.get_by_role("tab", name="Trace graph").click()
    expect(page.locator("svg.trace-graph g.tg-node")).to_have_count(4)
    expect(node(page, "db", "SELECT")).to_have_attribute("data-count", "3")
    expect(node(page, "db", "fetch")).to_have_attribute("data-count", "3")
    expect(node(page, "cache", "GET")).to_have_attribute("data-count", "2")
    expect(page.locator('g.tg-edge[data-from="api: GET /orders"][data-to="db: SELECT"]')).to_have_attribute(
        "data-calls", "3")
    expect(page.locator('g.tg-edge[data-from="api: GET /orders"][data-to="cache: GET"]')).to_have_attribute(
        "data-calls", "2")
    expect(page.locator('g.tg-edge[data-from="db: SELECT"][data-to="db: fetch"]')).to_have_attribute(
        "data-calls", "3")
    expect(node(page, "cache", "GET")).not_to_have_class(CRITICAL_CLASS)
    expect(node(page, "db", "SELECT")).to_have_class(CRITICAL_CLASS)


def test_clicking_a_node_shows_its_span_in_the_timeline(page: Page) -> None:
    open_graph(page, CHECKOUT_TRACE)
    node(page, "payment", "Charge").click()
    expect(page.get_by_role("tab", name="Timeline")).to_have_attribute("aria-selected", "true")
    expect(page.locator(".span-detail h2")).to_have_text("payment: Charge")
    expect(page.locator(".wf-row.is-selected .wf-op")).to_have_text("Charge")
