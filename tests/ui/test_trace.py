"""Trace page: one virtual row per span, span details, collapsing, critical path, other tabs."""

from __future__ import annotations

import json
import re
import time

import pytest
from playwright.sync_api import Page, expect

from tests.ui.conftest import save_screenshot
from tests.ui.data import CHECKOUT_SPANS, CHECKOUT_TRACE, CRITICAL, LINKED_SPAN, browse_trace_id

pytestmark = pytest.mark.browser


def open_trace(page: Page, trace_id: str) -> None:
    page.goto(f"/trace/{trace_id}")
    expect(page.locator(".trace-page[data-ready=true]")).to_be_attached()


def grid(page: Page):
    return page.get_by_role("treegrid")


def row(page: Page, name: str):
    return page.locator(".wf-row", has=page.locator(".wf-op", has_text=name))


def test_waterfall_has_one_row_per_span(page: Page) -> None:
    open_trace(page, CHECKOUT_TRACE)
    expect(grid(page)).to_have_attribute("aria-rowcount", str(len(CHECKOUT_SPANS)))
    assert page.evaluate("window.spanlakeTrace.model.spans.length") == len(CHECKOUT_SPANS)
    # Rows are indented by parent: SELECT cart is a grandchild of the root.
    expect(row(page, "SELECT cart")).to_have_attribute("aria-level", "3")


def test_fixture_trace_with_five_spans_shows_five_rows(page: Page) -> None:
    open_trace(page, "0000000000000011")  # Jaeger's example_trace
    expect(grid(page)).to_have_attribute("aria-rowcount", "5")
    expect(page.locator(".trace-head")).to_contain_text("example-service-1")


def test_span_detail_shows_attributes_resource_scope_events_and_links(page: Page) -> None:
    open_trace(page, CHECKOUT_TRACE)
    row(page, "Charge").click()
    detail = page.locator(".span-detail")
    expect(detail.get_by_role("heading", name="payment: Charge")).to_be_visible()
    expect(detail.locator(".span-kind")).to_have_text("server")
    expect(detail.locator(".status-error")).to_contain_text("card declined")
    attrs = detail.locator("table.kv", has=page.locator("caption", has_text="Span attributes"))
    expect(attrs.locator("tr", has_text="payment.amount")).to_contain_text("42.5")
    expect(attrs.locator("tr", has_text="payment.retried")).to_contain_text("true")
    expect(detail.locator("table.kv", has=page.locator("caption", has_text="Resource"))).to_contain_text(
        "payment-host-1")
    expect(detail.locator(".scope")).to_have_text("spanlake-ui-test 1.0")
    # The event happened 2 ms after the span started.
    expect(detail.locator(".events li").first).to_contain_text("+2ms retry")
    save_screenshot(page, "trace-view", docs_name="trace-view.png")


def test_span_detail_of_upstream_fixture_keeps_attribute_values(page: Page) -> None:
    open_trace(page, "0000000000000001")  # Jaeger's span_tags_trace
    page.locator(".wf-row").first.click()
    attrs = page.locator(".span-detail table.kv").first
    expect(attrs.locator("tr", has_text="sameplacetag1")).to_contain_text("sameplacevalue")
    expect(attrs.locator("tr", has_text="sameplacetag2")).to_contain_text("123")
    expect(attrs.locator("tr", has_text="sameplacetag3")).to_contain_text("72.5")
    expect(attrs.locator("tr", has_text="sameplacetag4")).to_contain_text("true")


def test_span_link_opens_the_linked_trace_at_the_linked_span(page: Page) -> None:
    open_trace(page, CHECKOUT_TRACE)
    row(page, "PlaceOrder").click()
    # An OTLP span link is a FOLLOWS_FROM reference in Jaeger's model; the detail lists it as such.
    link = page.locator(".span-detail .links li", has_text="follows from")
    expect(link).to_contain_text(LINKED_SPAN)
    link.get_by_role("link").click()
    expect(page).to_have_url(re.compile(rf"/trace/{browse_trace_id(0)}\?span={LINKED_SPAN}$"))
    expect(page.locator(".trace-head")).to_contain_text("frontend: GET /products")
    expect(page.locator(".span-detail h2")).to_have_text("db: SELECT items")
    expect(page.locator(".wf-row.is-selected")).to_have_attribute("data-span-id", LINKED_SPAN)
    page.go_back()
    expect(page.locator(".trace-head")).to_contain_text("frontend: GET /checkout")


def test_jaeger_follows_from_reference_of_an_upstream_fixture_is_a_link(page: Page) -> None:
    open_trace(page, "0000000000000012")  # Jaeger's tags_opname_trace: child_of and follows_from links
    page.locator(".wf-row").first.click()
    follows = page.locator('.span-detail .links li[data-ref-type="FOLLOWS_FROM"]')
    expect(follows).to_have_count(1)
    expect(follows).to_contain_text("follows from")
    follows.get_by_role("link").click()
    expect(page).to_have_url(re.compile(r"/trace/0+1\?span=0000000000000002$"))
    expect(page.locator(".wf-row.is-selected")).to_have_attribute("data-span-id", "0000000000000002")


def test_span_detail_keys_wrap_only_between_their_parts(page: Page) -> None:
    open_trace(page, CHECKOUT_TRACE)
    row(page, "PlaceOrder").click()
    keys = page.locator(".span-detail table.kv th")
    expect(keys.filter(has_text="telemetry.sdk.language")).to_have_count(1)
    # Where a key's text moves to the next line, the character before the break must be a separator.
    breaks = keys.evaluate_all("""ths => ths.flatMap((th) => {
      const text = th.textContent; const out = []; let top = null;
      const walker = document.createTreeWalker(th, NodeFilter.SHOW_TEXT);
      let offset = 0;
      for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        for (let i = 0; i < node.length; i++) {
          const range = document.createRange(); range.setStart(node, i); range.setEnd(node, i + 1);
          const y = range.getBoundingClientRect().top;
          if (top !== null && y > top + 2) out.push(text.slice(0, offset + i) + '|' + text.slice(offset + i));
          top = y;
        }
        offset += node.length;
      }
      return out;
    })""")
    assert breaks, "the test resource has keys too long for one line of the key column"
    for broken in breaks:
        assert broken.split("|")[0][-1] in "._-/:", broken


def test_duration_labels_stay_inside_the_timeline_with_the_detail_open(page: Page) -> None:
    open_trace(page, CHECKOUT_TRACE)
    row(page, "GET /checkout").click()
    expect(page.locator(".span-detail")).to_be_visible()
    rows = page.locator(".wf-row")
    expect(rows).to_have_count(len(CHECKOUT_SPANS))
    # The rows are redrawn for the narrower column: poll until every label fits inside it.
    page.wait_for_function("""() => [...document.querySelectorAll('.wf-row')].every((r) => {
      const t = r.querySelector('.wf-timeline').getBoundingClientRect();
      const d = r.querySelector('.wf-dur').getBoundingClientRect();
      return d.width > 0 && d.left >= t.left - 0.5 && d.right <= t.right + 0.5;
    })""")
    expect(row(page, "GET /checkout").locator(".wf-dur")).to_have_text("100ms")


def test_collapsing_a_subtree_hides_its_rows(page: Page) -> None:
    open_trace(page, CHECKOUT_TRACE)
    place_order = row(page, "PlaceOrder")
    place_order.get_by_role("button").click()
    expect(grid(page)).to_have_attribute("aria-rowcount", str(len(CHECKOUT_SPANS) - 2))
    expect(row(page, "Charge")).to_have_count(0)
    expect(row(page, "log.write")).to_have_count(0)
    expect(place_order).to_have_attribute("aria-expanded", "false")
    # Keyboard: ArrowRight on the focused collapsed row expands it again.
    grid(page).focus()
    page.keyboard.press("ArrowRight")
    expect(grid(page)).to_have_attribute("aria-rowcount", str(len(CHECKOUT_SPANS)))
    expect(row(page, "Charge")).to_have_count(1)


def test_critical_path_is_marked_on_the_spans_the_trace_waited_for(page: Page) -> None:
    open_trace(page, CHECKOUT_TRACE)
    marked = page.locator(".wf-row.is-critical .wf-op").all_inner_texts()
    assert set(marked) == CRITICAL
    unmarked = page.locator(".wf-row:not(.is-critical) .wf-op").all_inner_texts()
    assert set(unmarked) == {"auth.verify", "log.write"}


def test_search_in_trace_highlights_matches(page: Page) -> None:
    open_trace(page, CHECKOUT_TRACE)
    page.get_by_label("Find in trace").fill("db.system=postgresql")
    expect(page.locator(".wf-row.is-match")).to_have_count(1)
    expect(page.locator(".wf-row.is-match .wf-op")).to_have_text("SELECT cart")


def test_statistics_flame_graph_and_json_tabs(page: Page) -> None:
    open_trace(page, CHECKOUT_TRACE)
    page.get_by_role("tab", name="Statistics").click()
    stats = page.locator("table.data")
    # PlaceOrder lasts 50 ms; its children cover 50-60 ms, so its self time is 40 ms.
    expect(stats.locator("tr", has_text="PlaceOrder")).to_contain_text("40ms")
    page.get_by_role("tab", name="Flame graph").click()
    expect(page.locator("canvas.flame-canvas")).to_be_visible()
    page.get_by_role("tab", name="JSON").click()
    expect(page.locator("pre.json")).to_contain_text('"operationName": "PlaceOrder"')
    with page.expect_download() as dl:
        page.get_by_role("button", name="Download JSON").click()
    assert dl.value.suggested_filename == f"trace-{CHECKOUT_TRACE}.json"


def test_keyboard_moves_through_rows_and_opens_details(page: Page) -> None:
    open_trace(page, CHECKOUT_TRACE)
    grid(page).focus()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    # Rows are depth-first by start time: the root, then GetCart.
    expect(page.locator(".span-detail h2")).to_have_text("cart: GetCart")
    active = grid(page).get_attribute("aria-activedescendant")
    expect(page.locator(f"#{active} .wf-op")).to_have_text("GetCart")


def jaeger_chain_trace(n: int) -> dict[str, object]:
    """A Jaeger UI JSON trace of ``n`` spans, each the child of the one before (depth n)."""
    tid = "00000000000000ff"
    spans = [{"traceID": tid, "spanID": f"{i + 1:016x}", "operationName": f"step-{i}",
              "references": [{"refType": "CHILD_OF", "traceID": tid, "spanID": f"{i:016x}"}] if i else [],
              "startTime": 1_700_000_000_000_000 + i, "duration": 2 * (n - i), "tags": [], "logs": [],
              "processID": "p1", "warnings": None} for i in range(n)]
    return {"data": [{"traceID": tid, "spans": spans,
                      "processes": {"p1": {"serviceName": "deep", "tags": []}}, "warnings": None}]}


def test_ten_thousand_deep_spans_render_only_visible_rows(page: Page, tmp_path) -> None:
    path = tmp_path / "deep.json"
    path.write_text(json.dumps(jaeger_chain_trace(10_000)))
    page.goto("/open")
    page.locator("input[type=file]").set_input_files(str(path))
    expect(grid(page)).to_have_attribute("aria-rowcount", "10000")
    assert int(grid(page).get_attribute("data-rendered-rows") or 0) < 100
    grid(page).evaluate("el => { el.scrollTop = el.scrollHeight; }")
    expect(row(page, "step-9999")).to_have_attribute("aria-rowindex", "10000")
    # A chain this deep is also the critical path from end to end.
    assert page.evaluate("window.spanlakeTrace.model.spans.every(s => s.critical)")


def test_enter_in_trace_search_reveals_a_match_inside_a_collapsed_subtree(page: Page) -> None:
    open_trace(page, CHECKOUT_TRACE)
    page.get_by_role("button", name="Collapse all").click()
    expect(grid(page)).to_have_attribute("aria-rowcount", "1")
    search = page.get_by_label("Find in trace")
    search.fill("Charge")
    search.press("Enter")
    expect(row(page, "Charge")).to_have_count(1)
    expect(page.locator(".span-detail h2")).to_have_text("payment: Charge")
    expect(page.locator(".wf-match-info")).to_have_text("1 of 1")


def test_unknown_trace_shows_the_servers_error(page: Page) -> None:
    page.goto("/trace/00000000deadbeef")
    expect(page.get_by_role("alert")).to_contain_text("trace not found")


def test_dragging_across_the_time_axis_zooms_and_reset_restores(page: Page) -> None:
    open_trace(page, CHECKOUT_TRACE)
    axis = page.locator(".wf-axis")
    box = axis.bounding_box()
    assert box is not None
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.4, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.9, y, steps=5)
    page.mouse.up()
    # Zoomed to 40-90 ms of the 100 ms trace: the axis starts at 40 ms and PlaceOrder fills the width.
    expect(axis.locator(".wf-tick").first).to_have_text("40ms")
    bar = row(page, "PlaceOrder").locator(".wf-bar")
    # The virtual rows are re-rendered after the zoom: measure once they have settled.
    share, deadline = 0.0, time.monotonic() + 10
    while not share > 0.95 and time.monotonic() < deadline:
        page.wait_for_timeout(50)
        share = bar.evaluate("b => b.offsetWidth / b.parentElement.offsetWidth")
    assert share > 0.95
    page.get_by_role("button", name="Reset zoom").click()
    expect(axis.locator(".wf-tick").first).to_have_text("0ns")


def test_query_this_trace_in_sql_lists_its_spans(page: Page) -> None:
    open_trace(page, "0000000000000011")  # example_trace: the v1 API prints its ID with 16 digits
    page.get_by_role("link", name="Query this trace in SQL").click()
    expect(page.locator("table.sql-results tbody tr")).to_have_count(5)
