"""Service map, SQL console, compare and file open, each in a real browser."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.paths import JAEGER_SUITE
from tests.ui.data import CHECKOUT_TRACE, EDGES, browse_trace_id

pytestmark = pytest.mark.browser


def test_service_map_shows_the_known_edges(page: Page) -> None:
    page.goto("/map")
    graph = page.locator("svg.service-graph")
    expect(graph).to_be_visible()
    for parent, child in EDGES:
        expect(graph.locator(f'g.edge[data-parent="{parent}"][data-child="{child}"]')).to_have_count(1)
    shown = graph.locator("g.edge").evaluate_all(
        "els => els.map(e => [e.dataset.parent, e.dataset.child])")
    assert {tuple(e) for e in shown} == EDGES
    graph.locator('g.node[data-service="checkout"]').click()
    expect(page.locator(".red-chart .main-svg").first).to_be_visible()
    expect(page.locator(".red figure")).to_have_count(3)


def test_sql_console_runs_a_query_and_draws_a_chart(page: Page) -> None:
    page.goto("/sql")
    expect(page.locator(".sql-schema")).to_contain_text("service_name")
    page.get_by_label("SQL query").fill(
        "SELECT service_name, count(*) AS spans FROM spans GROUP BY service_name ORDER BY service_name")
    page.get_by_role("button", name="Run", exact=True).click()
    table = page.locator("table.sql-results")
    expect(table.locator("tr", has_text="payment")).to_contain_text("1")
    page.get_by_role("button", name="Draw chart").click()
    expect(page.locator(".chart[data-drawn=bar] .main-svg").first).to_be_visible()


def test_sql_errors_are_shown_inline(page: Page) -> None:
    page.goto("/sql")
    page.get_by_label("SQL query").fill("SELECT no_such_column FROM spans")
    page.get_by_label("SQL query").press("Control+Enter")
    expect(page.locator(".sql-output [role=alert]")).to_contain_text("no_such_column")


def test_compare_highlights_differences(page: Page) -> None:
    page.goto(f"/compare/{browse_trace_id(1)}/{CHECKOUT_TRACE}")
    table = page.locator("table.data")
    expect(table.locator("tr.diff-added", has_text="PlaceOrder")).to_have_count(1)
    expect(table.locator("tr.diff-removed", has_text="ListItems")).to_have_count(1)
    # Side by side: one waterfall per trace, differing spans highlighted (here: every span differs).
    grids = page.get_by_role("treegrid")
    expect(grids).to_have_count(2)
    expect(grids.nth(0)).to_have_attribute("aria-rowcount", "3")
    expect(grids.nth(1)).to_have_attribute("aria-rowcount", "7")
    expect(grids.nth(1).locator(".wf-row.is-match")).to_have_count(7)


def test_opening_an_otlp_file_shows_its_spans_without_storing_them(page: Page) -> None:
    page.goto("/open")
    page.locator("input[type=file]").set_input_files(str(JAEGER_SUITE / "traces" / "example_trace.json"))
    expect(page.get_by_role("treegrid")).to_have_attribute("aria-rowcount", "5")
    expect(page.locator(".trace-head")).to_contain_text("example_trace.json")
    expect(page.locator(".wf-op")).to_have_count(5)
    ops = set(page.locator(".wf-op").all_inner_texts())
    assert ops == {f"example-operation-{i}" for i in (1, 2, 3, 4)}


def test_a_downloaded_trace_json_opens_again_from_the_file(page: Page, tmp_path) -> None:
    page.goto(f"/trace/{CHECKOUT_TRACE}")
    page.get_by_role("tab", name="JSON").click()
    with page.expect_download() as dl:
        page.get_by_role("button", name="Download JSON").click()
    saved = tmp_path / "trace.json"
    dl.value.save_as(saved)
    page.goto("/open")
    page.locator("input[type=file]").set_input_files(str(saved))
    expect(page.get_by_role("treegrid")).to_have_attribute("aria-rowcount", "7")
    expect(page.locator(".wf-row.is-critical")).to_have_count(5)


def test_every_sql_example_runs(page: Page) -> None:
    page.goto("/sql")
    examples = page.locator(".examples button")
    expect(examples.first).to_be_visible()
    assert examples.count() >= 5
    for i in range(examples.count()):
        examples.nth(i).click()
        page.get_by_role("button", name="Run", exact=True).click()
        expect(page.locator(".sql-output")).not_to_have_attribute("data-state", "running")
        expect(page.locator(".sql-output [role=alert]")).to_have_count(0)
        expect(page.locator("table.sql-results")).to_be_visible()


def test_trace_ids_in_sql_results_open_the_trace(page: Page) -> None:
    page.goto("/sql")
    page.get_by_label("SQL query").fill("SELECT trace_id FROM traces WHERE root_span_name = 'GET /checkout'")
    page.get_by_role("button", name="Run", exact=True).click()
    page.locator("table.sql-results a").click()
    expect(page.locator(".trace-head")).to_contain_text("frontend: GET /checkout")


def test_red_chart_links_open_the_matching_traces(page: Page) -> None:
    page.goto("/map?service=payment")
    errors_link = page.locator(".red figure", has_text="Error rate").get_by_role("link", name="traces")
    errors_link.click()
    # The error-rate chart links to the service's failed traces in the chart's time range.
    expect(page.get_by_label("Lookback")).to_have_value("custom")
    expect(page.get_by_label("Tags")).to_have_value("error=true")
    expect(page.locator("ol.results li")).to_have_count(1)
    expect(page.locator("ol.results")).to_contain_text("frontend: GET /checkout")


def test_select_star_scrolls_inside_its_box_and_truncates_long_cells(page: Page) -> None:
    page.goto("/sql")
    page.get_by_label("SQL query").fill("SELECT * FROM spans")
    page.get_by_role("button", name="Run", exact=True).click()
    box = page.locator(".sql-scroll")
    expect(box.locator("table.sql-results tbody tr").first).to_be_visible()
    # The page keeps its width and the schema stays on screen; the result box scrolls both ways.
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 1280
    schema = page.locator(".sql-schema").bounding_box()
    assert schema is not None and schema["x"] + schema["width"] <= 1280
    assert box.evaluate("el => el.scrollWidth > el.clientWidth && el.scrollHeight > el.clientHeight")
    before = box.evaluate("el => el.getBoundingClientRect().width")
    box.evaluate("el => { el.scrollLeft = el.scrollWidth; el.scrollTop = el.scrollHeight; }")
    assert box.evaluate("el => el.scrollLeft > 0 && el.scrollTop > 0")
    assert box.evaluate("el => el.getBoundingClientRect().width") == before
    # Long cells are cut with an ellipsis; hovering shows the whole value (the resource attributes).
    cut = box.locator("td[title]").evaluate_all(
        "tds => tds.filter(td => td.scrollWidth > td.clientWidth).map(td => [td.textContent, td.title])")
    assert cut, "no cell was long enough to be truncated"
    shown, full = next((s, f) for s, f in cut if "telemetry.sdk.language" in f)
    assert full.startswith(shown.rstrip("…"))
    assert "deployment.environment.name" in full


def plot_state(page: Page, title: str) -> dict[str, object]:
    chart = page.locator(".red figure", has_text=title).locator(".js-plotly-plot")
    expect(chart.locator(".main-svg").first).to_be_visible()
    return chart.evaluate("""el => {
      const area = el.querySelector('.draglayer .nsewdrag').getBoundingClientRect();
      const points = [...el.querySelectorAll('.scatterlayer .point')].map((p) => p.getBoundingClientRect());
      return {yrange: el._fullLayout.yaxis.range, left: area.left, right: area.right,
              points: points.map((p) => [p.left, p.right])};
    }""")


def test_red_charts_keep_single_points_whole_and_error_rate_starts_at_zero(page: Page) -> None:
    # checkout served one request in the last day, and it did not fail.
    page.goto("/map?service=checkout")
    for title in ("Requests per minute", "Error rate", "Latency"):
        state = plot_state(page, title)
        points = state["points"]
        assert points, title
        for left, right in points:  # type: ignore[union-attr]
            assert state["left"] - 0.5 <= left and right <= state["right"] + 0.5, (title, left, right, state)
    errors = plot_state(page, "Error rate")
    assert errors["yrange"] == [0, 1]
    requests = plot_state(page, "Requests per minute")
    assert requests["yrange"][0] == 0  # type: ignore[index]
    # payment's only request failed: 100 % errors, and the axis still starts at 0.
    page.goto("/map?service=payment")
    failing = plot_state(page, "Error rate")
    assert failing["yrange"][0] == 0 and failing["yrange"][1] >= 100  # type: ignore[index]
