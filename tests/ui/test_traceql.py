"""TraceQL in the search page: the query box autocompletes scopes, names and values from the Tempo tag
endpoints, marks syntax errors where the server says, shows the form as TraceQL, lists matched spans per
trace with select()ed columns, and draws metrics queries whose exemplars open their traces."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Page, expect

from tests.ui.conftest import save_screenshot
from tests.ui.data import CHECKOUT_TRACE, browse_trace_id

pytestmark = pytest.mark.browser

# The error traces of the last hour: the checkout trace (Charge) and browse traces 4 and 9 (ListItems).
ERROR_TRACES = {CHECKOUT_TRACE, browse_trace_id(4), browse_trace_id(9)}


def query_url(q: str, lookback: str = "1h") -> str:
    return "/search?" + urlencode({"q": q, "lookback": lookback, "run": "1"})


def suggestions(page: Page) -> list[str]:
    return [str(t) for t in page.locator("#tql-suggestions .tql-opt-label").all_text_contents()]


def every_exemplar_opens_its_trace(page: Page) -> list[str]:
    """Click every diamond of the chart in turn; each must ask to open its own trace. The app's in-page
    navigations (a spanlake:navigate event on window) are recorded and held back, so one page load
    checks them all. Returns the exemplars' trace IDs."""
    chart = page.locator(".tql-chart")
    points = chart.locator(".point")
    ids: list[str] = chart.evaluate("c => c.data[c.data.length - 1].customdata")
    assert ids and len(ids) == points.count()
    page.evaluate("""() => { window.opened = [];
      const dispatch = window.dispatchEvent.bind(window);
      window.dispatchEvent = (e) => (e.type === 'spanlake:navigate' ? window.opened.push(e.detail) > 0
        : dispatch(e)); }""")
    # Quick clicks from diamond to diamond (plotly's throttled hover may still hold the previous one),
    # also where a diamond sits on a line's peak or a heatmap cell.
    for i in range(len(ids)):
        points.nth(i).click(force=True)
    assert page.evaluate("window.opened") == [f"/trace/{trace_id}" for trace_id in ids]
    return ids


def test_form_fields_are_shown_as_traceql_and_go_into_the_query_box(page: Page) -> None:
    page.goto("/search")
    page.get_by_label("Service").select_option("frontend")
    page.get_by_label("Operation").select_option("GET /checkout")
    page.get_by_label("Tags").fill("http.status_code=500 error=true")
    page.get_by_label("Min duration").fill("100ms")
    expected = ('{resource.service.name="frontend" && name="GET /checkout" && span.http.status_code=500 '
                "&& status=error && duration>100ms}")
    expect(page.locator(".tql-from-form")).to_have_text(expected)
    page.get_by_role("button", name="Use in query box").click()
    expect(page.get_by_label("TraceQL")).to_have_value(expected)
    # The equivalent query finds what the form finds: the same form without the status tag, run both ways.
    page.get_by_label("Tags").fill("http.status_code=200")
    page.get_by_label("Min duration").fill("")
    page.get_by_label("Lookback").select_option("1h")
    page.get_by_role("button", name="Use in query box").click()
    page.get_by_role("button", name="Run query").click()
    expect(page.locator("ol.tql-results > li")).to_have_count(1)
    title = page.locator("ol.tql-results a.result-title")
    expect(title).to_have_attribute("href", f"/trace/{CHECKOUT_TRACE}")


def test_autocomplete_offers_scopes_names_and_values(page: Page) -> None:
    page.goto("/search")
    box = page.get_by_label("TraceQL")
    box.click()
    box.type("{ ")
    # Inside a spanset: every scope and the intrinsics.
    expect(page.get_by_role("listbox", name="Suggestions")).to_be_visible()
    labels = suggestions(page)
    expected = {"span.", "resource.", "event.", "link.", "instrumentation.", "duration", "status", "name"}
    assert expected <= set(labels)
    box.type("res")
    expect(page.locator("#tql-suggestions .tql-opt-label")).to_have_text(["resource."])
    box.press("Enter")
    expect(box).to_have_value("{ resource.")
    # Resource attribute names, from the tags endpoint.
    expect(page.get_by_role("option", name=re.compile(r"^service\.name"))).to_be_visible()
    assert "host.name" in suggestions(page)
    assert "http.method" not in suggestions(page)
    save_screenshot(page, "traceql-autocomplete")
    box.type("serv")
    box.press("Tab")
    expect(box).to_have_value("{ resource.service.name")
    box.type(' = "pay')
    # Values from the tag values endpoint, narrowed by what was typed.
    expect(page.locator("#tql-suggestions .tql-opt-label")).to_have_text(["payment"])
    box.press("Enter")
    expect(box).to_have_value('{ resource.service.name = "payment"')
    # The rest of the spanset narrows the values: the payment service has one operation.
    box.type(" && name = ")
    expect(page.locator("#tql-suggestions .tql-opt-label")).to_have_text(["Charge"])
    box.press("ArrowDown")
    box.press("Enter")
    box.type(" }")
    expect(box).to_have_value('{ resource.service.name = "payment" && name = "Charge" }')
    box.press("Escape")
    box.press("Enter")
    expect(page.locator("ol.tql-results > li")).to_have_count(1)
    expect(page.locator("ol.tql-results .tql-spans tbody tr")).to_contain_text(["Charge"])


def test_syntax_error_is_marked_at_its_line_and_column(page: Page) -> None:
    page.goto(query_url('{ status = error }\n| select(span.http.method,, name)'))
    error = page.locator("#tql-error")
    expect(error).to_contain_text("line 2, col")
    # The server's column points at the second comma: that character is marked in the box.
    expect(page.locator(".tql-error-mark")).to_have_text(",")
    expect(page.locator(".tql-error-mark")).to_be_visible()
    expect(page.get_by_label("TraceQL")).to_have_attribute("aria-invalid", "true")
    mark_text = page.locator(".tql-mirror").evaluate(
        "m => m.textContent.slice(0, m.textContent.indexOf(m.querySelector('mark').textContent) + 1)")
    assert mark_text.endswith("method,")
    save_screenshot(page, "traceql-syntax-error")
    # Editing the query clears the mark.
    page.get_by_label("TraceQL").press("End")
    page.get_by_label("TraceQL").type(" ")
    expect(page.locator(".tql-error-mark")).to_have_count(0)


def test_results_list_matched_spans_with_selected_attributes(page: Page) -> None:
    page.goto(query_url("{ status = error } | select(span.payment.amount, resource.host.name)"))
    traces = page.locator("ol.tql-results > li")
    expect(traces).to_have_count(3)
    titles = page.locator("ol.tql-results a.result-title")
    hrefs = titles.evaluate_all("els => els.map(e => e.getAttribute('href'))")
    assert {h.rsplit("/", 1)[1] for h in hrefs} == ERROR_TRACES
    checkout = traces.filter(has_text=CHECKOUT_TRACE)
    headers = checkout.locator("thead th").all_text_contents()
    assert {"payment.amount", "host.name"} <= set(headers)
    row = checkout.locator("tbody tr")
    expect(row).to_have_count(1)
    cells = dict(zip(headers, row.locator("td").all_text_contents(), strict=True))
    assert cells["Span"] == "Charge"
    assert cells["payment.amount"] == "42.5"
    assert cells["host.name"] == "payment-host-1"
    assert cells["Duration"] == "10ms"
    save_screenshot(page, "traceql-search", docs_name="traceql-search.png")
    # A matched span opens its trace with that span selected; the trace title opens the trace.
    checkout.get_by_role("link", name="Charge").click()
    expect(page).to_have_url(re.compile(rf"/trace/{CHECKOUT_TRACE}\?span=0000000000000006$"))
    expect(page.locator(".span-count")).to_have_text("7")
    page.go_back()
    page.locator("ol.tql-results a.result-title").filter(has_text="GET /checkout").click()
    expect(page).to_have_url(re.compile(rf"/trace/{CHECKOUT_TRACE}$"))


def test_rate_by_service_draws_series_and_an_exemplar_opens_its_trace(page: Page) -> None:
    page.goto(query_url("{ } | rate() by(resource.service.name)"))
    chart = page.locator(".tql-chart")
    expect(page.get_by_role("heading", name="5 series")).to_be_visible()
    expect(chart.locator(".legendtext")).to_contain_text(["resource.service.name=cart",
                                                          "resource.service.name=frontend", "exemplars"])
    points = chart.locator(".point")
    expect(points.first).to_be_visible()
    save_screenshot(page, "traceql-rate", docs_name="traceql-metrics.png")
    ids = every_exemplar_opens_its_trace(page)
    assert CHECKOUT_TRACE in ids
    # And a click really opens the trace.
    page.reload()
    page.locator(".tql-chart .point").last.click(force=True)
    expect(page).to_have_url(re.compile(rf"/trace/{ids[-1]}$"))
    expect(page.locator(".trace-page[data-ready=true]")).to_be_attached()


def test_quantile_over_time_draws_one_series_per_quantile(page: Page) -> None:
    page.goto(query_url("{ resource.service.name = \"frontend\" } | quantile_over_time(duration, .99)"))
    expect(page.get_by_role("heading", name="1 series")).to_be_visible()
    chart = page.locator(".tql-chart")
    expect(chart.locator(".legendtext").first).to_contain_text("0.99")
    expect(chart.locator(".ytitle")).to_have_text("seconds")
    expect(chart.locator(".point").first).to_be_visible()


def test_histogram_over_time_draws_a_heatmap_whose_exemplars_open_traces(page: Page) -> None:
    page.goto(query_url("{ } | histogram_over_time(duration)"))
    chart = page.locator(".tql-chart")
    expect(chart.locator(".hm")).to_have_count(1)
    # Buckets are power-of-two durations; the slowest bucket holds the 100 ms checkout trace.
    expect(chart.locator(".ytick")).to_contain_text(["≤ 125ms"])
    points = chart.locator(".point")
    expect(points.first).to_be_visible()
    save_screenshot(page, "traceql-histogram")
    every_exemplar_opens_its_trace(page)
    page.reload()
    points.first.click(force=True)
    expect(page).to_have_url(re.compile(r"/trace/[0-9a-f]{32}$"))
    expect(page.locator(".trace-page[data-ready=true]")).to_be_attached()


def test_by_groups_show_their_values_and_spans_beyond_spss_are_counted(page: Page) -> None:
    page.goto(query_url(f'{{ trace:id = "{CHECKOUT_TRACE}" }} | by(resource.service.name)'))
    trace = page.locator("ol.tql-results > li")
    expect(trace).to_have_count(1)
    # One group per service, its value above its spans: frontend's two spans, payment's one.
    groups = trace.locator("tbody")
    expect(groups).to_have_count(5)
    frontend = groups.filter(has_text="resource.service.name = frontend")
    span_names = frontend.locator("tr:not(.tql-set-head) td:first-child")
    expect(span_names).to_have_text(["GET /checkout", "auth.verify"])
    expect(groups.filter(has_text="resource.service.name = payment").locator("a")).to_have_text(["Charge"])
    expect(trace.locator(".matched")).to_have_text("7 matched spans")
    # Without by(), one spanset of 7 spans: the server returns 3 per spanset unless spss says more.
    page.goto(query_url(f'{{ trace:id = "{CHECKOUT_TRACE}" }}'))
    expect(page.locator("ol.tql-results .matched")).to_have_text("7 matched spans (3 shown)")
    page.goto(query_url(f'{{ trace:id = "{CHECKOUT_TRACE}" }}') + "&spss=10")
    expect(page.locator("ol.tql-results .matched")).to_have_text("7 matched spans")
    expect(page.locator("ol.tql-results tbody tr")).to_have_count(7)
    # The query box runs with the same spss.
    page.get_by_label("TraceQL").fill(f'{{ trace:id = "{CHECKOUT_TRACE}" && kind = server }}')
    page.get_by_role("button", name="Run query").click()
    expect(page).to_have_url(re.compile(r"spss=10"))
    expect(page.locator("ol.tql-results .matched")).to_have_text("4 matched spans")


def test_traceql_results_fit_an_800px_window(page: Page) -> None:
    page.set_viewport_size({"width": 800, "height": 860})
    q = "{ status = error } | select(span.payment.amount, resource.host.name, span.db.statement)"
    page.goto(query_url(q))
    expect(page.locator("ol.tql-results > li")).to_have_count(3)
    # The spans table scrolls inside its box; the page never scrolls sideways.
    assert page.evaluate("document.documentElement.scrollWidth") <= 800
    save_screenshot(page, "traceql-800px")


def test_autocomplete_after_a_pipe_offers_stages_and_select_takes_attribute_names(page: Page) -> None:
    page.goto("/search?lookback=1h")
    box = page.get_by_label("TraceQL")
    box.click()
    box.type("{ status = error } | ")
    expect(page.get_by_role("option", name="rate()")).to_be_visible()
    stages = {"select(", "by(", "rate()", "quantile_over_time(duration, .99)",
              "histogram_over_time(duration)"}
    assert stages <= set(suggestions(page))
    box.type("sel")
    box.press("Enter")
    expect(box).to_have_value("{ status = error } | select(")
    box.type("span.pay")
    names = page.locator("#tql-suggestions .tql-opt-label")
    expect(names).to_have_text(["payment.amount", "payment.retried"])
    box.press("Tab")
    box.type(")")
    expect(page.get_by_role("listbox", name="Suggestions")).to_be_hidden()
    box.press("Enter")
    expect(page).to_have_url(re.compile(r"q=%7B\+status\+%3D\+error\+%7D\+%7C\+select%28span\.payment\.amount%29"))
    expect(page.locator("ol.tql-results > li")).to_have_count(3)
    expect(page.locator("ol.tql-results thead").first).to_contain_text("payment.amount")
