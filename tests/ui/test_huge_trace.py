"""A 100,000-span trace, generated here: it opens with the levels that do not fit in a page collapsed
(each collapsed parent showing how many spans it hides), scrolls to its last row, and expands fully.
Speed is the benchmark's business (bench/ui_render.py); this test checks behaviour only."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

N_SPANS = 100_000
FANOUT = 8
ROW_BUDGET = 10_000  # waterfall.js ROW_BUDGET
MAX_GRAPH_NODES = 300  # trace-graph.js MAX_NODES
TRACE_ID = "0000000000100000"


def hundred_thousand_span_trace() -> dict[str, object]:
    """Jaeger UI JSON: an 8-ary tree of 100,000 spans over 20 services, children inside their parent."""
    t0 = 1_700_000_000_000_000
    spans = []
    for i in range(N_SPANS):
        parent = (i - 1) // FANOUT if i else -1
        refs = [{"refType": "CHILD_OF", "traceID": TRACE_ID, "spanID": f"{parent + 1:016x}"}] if i else []
        spans.append({"traceID": TRACE_ID, "spanID": f"{i + 1:016x}", "operationName": f"op-{i}",
                      "references": refs, "startTime": t0 + i % 1000, "duration": 10_000 - i % 1000,
                      "tags": [{"key": "i", "type": "int64", "value": i}], "logs": [],
                      "processID": f"p{i % 20}", "warnings": None})
    processes = {f"p{k}": {"serviceName": f"service-{k:02d}", "tags": []} for k in range(20)}
    return {"data": [{"traceID": TRACE_ID, "spans": spans, "processes": processes, "warnings": None}]}


def depth_counts() -> list[int]:
    counts, level, seen = [], 1, 0
    while seen < N_SPANS:
        counts.append(min(level, N_SPANS - seen))
        seen += counts[-1]
        level *= FANOUT
    return counts


@pytest.fixture(scope="module")
def huge_trace_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("huge") / "trace-100k.json"
    path.write_text(json.dumps(hundred_thousand_span_trace()))
    return path


@pytest.fixture
def huge(page: Page, huge_trace_file: Path) -> Iterator[Page]:
    page.set_default_timeout(120_000)  # a busy 2-core machine parses and builds 100,000 spans slowly
    page.goto("/open")
    page.locator("input[type=file]").set_input_files(str(huge_trace_file))
    expect(page.locator(".trace-page[data-ready=true]")).to_be_attached(timeout=120_000)
    yield page


def grid(page: Page):
    return page.get_by_role("treegrid")


def test_opens_with_deeper_levels_collapsed_and_counts_shown(huge: Page) -> None:
    assert huge.evaluate("window.spanlakeTrace.model.spans.length") == N_SPANS
    expect(huge.locator(".span-count")).to_have_text(str(N_SPANS))
    # Whole levels are shown while they fit in the budget: 1 + 8 + 64 + 512 + 4096 rows.
    counts = depth_counts()
    shown, levels = 0, 0
    while shown + counts[levels] <= ROW_BUDGET:
        shown += counts[levels]
        levels += 1
    expect(grid(huge)).to_have_attribute("aria-rowcount", str(shown))
    expect(huge.locator(".wf-shown")).to_contain_text(f"{shown:,} of {N_SPANS:,} spans shown")
    # The rows of the last level shown are collapsed, each with the size of its hidden subtree.
    grid(huge).evaluate("el => { el.scrollTop = el.scrollHeight; }")
    last = huge.locator(f'.wf-row[aria-rowindex="{shown}"]')
    expect(last).to_have_attribute("aria-expanded", "false")
    hidden = huge.evaluate(f"window.spanlakeTrace.model.spans.find(s => s.spanID === "
                           f"'{int(last.get_attribute('data-span-id') or '0', 16):016x}').size - 1")
    assert hidden > 0
    expect(last.locator(".wf-hidden-count")).to_have_text(f" +{hidden} spans")
    assert int(grid(huge).get_attribute("data-rendered-rows") or 0) < 100


def test_scrolls_through_and_expands_a_collapsed_subtree(huge: Page) -> None:
    rows = int(grid(huge).get_attribute("aria-rowcount") or 0)
    # Scroll in steps, as a reader would: every step shows the rows of that place, never an empty page.
    for k in range(1, 11):
        grid(huge).evaluate(f"el => {{ el.scrollTop = (el.scrollHeight - el.clientHeight) * {k} / 10; }}")
        expect(huge.locator(f'.wf-row[aria-rowindex="{max(1, rows * k // 10 - 5)}"]')).to_be_attached()
    collapsed = huge.locator('.wf-row[aria-expanded="false"]').first
    collapsed.get_by_role("button").click()
    expect(grid(huge)).to_have_attribute("aria-rowcount", str(rows + FANOUT))
    huge.get_by_role("button", name="Expand all").click()
    expect(grid(huge)).to_have_attribute("aria-rowcount", str(N_SPANS), timeout=60_000)
    expect(huge.locator(".wf-shown")).to_have_text("")
    grid(huge).evaluate("el => { el.scrollTop = el.scrollHeight; }")
    expect(huge.locator(f'.wf-row[aria-rowindex="{N_SPANS}"]')).to_be_attached()


def test_find_reveals_a_span_inside_a_collapsed_level(huge: Page) -> None:
    search = huge.get_by_label("Find in trace")
    search.fill("op-99999")
    search.press("Enter")
    expect(huge.locator(".span-detail h2")).to_have_text("service-19: op-99999")
    expect(huge.locator(".wf-row.is-selected .wf-op")).to_have_text("op-99999")


def test_a_small_scroll_keeps_the_rows_still_in_view(huge: Page) -> None:
    # Smooth scrolling: a wheel step builds only the rows scrolling in; rows still in view stay the
    # same elements (and keep their place in the DOM order, which screen readers follow).
    grid(huge).evaluate("el => { el.scrollTop = 24 * 2000; }")
    row = huge.locator('.wf-row[aria-rowindex="2010"]')
    expect(row).to_be_attached()
    row.evaluate("el => { el.dataset.marked = 'yes'; }")
    indexes = "els => els.map(e => Number(e.getAttribute('aria-rowindex')))"
    last = max(grid(huge).locator(".wf-row").evaluate_all(indexes))
    grid(huge).evaluate("el => { el.scrollTop += 24 * 3; }")
    expect(huge.locator(f'.wf-row[aria-rowindex="{last + 3}"]')).to_be_attached()
    expect(row).to_have_attribute("data-marked", "yes")
    order = grid(huge).locator(".wf-row").evaluate_all(indexes)
    assert order == sorted(order) and order == list(range(order[0], order[0] + len(order)))


def test_trace_graph_of_a_huge_trace_keeps_the_most_called_operations(huge: Page) -> None:
    # Every span of this trace has its own operation name: 100,000 distinct nodes would bury the page.
    huge.get_by_role("tab", name="Trace graph").click()
    nodes = huge.locator("svg.trace-graph g.tg-node")
    expect(nodes.first).to_be_visible()
    assert nodes.count() == MAX_GRAPH_NODES
    expect(huge.locator(".tg-legend")).to_contain_text(f"{N_SPANS - MAX_GRAPH_NODES} less-called operations")
    # The critical path's operations are always kept.
    critical = huge.evaluate("window.spanlakeTrace.model.spans.filter(s => s.critical).length")
    expect(huge.locator("svg.trace-graph g.tg-node.is-critical")).to_have_count(critical)
