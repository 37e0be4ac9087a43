"""Search page: the form finds the right traces, its state lives in the URL and back works."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.ui.conftest import save_screenshot
from tests.ui.data import CHECKOUT_TRACE

pytestmark = pytest.mark.browser


def result_ids(page: Page) -> set[str]:
    links = page.locator("ol.results a.result-title")
    hrefs = links.evaluate_all("els => els.map(e => e.getAttribute('href'))")
    return {h.rsplit("/", 1)[1] for h in hrefs}


def search(page: Page, service: str = "", tags: str = "", lookback: str = "2d") -> None:
    if service:
        page.get_by_label("Service").select_option(service)
    page.get_by_label("Tags").fill(tags)
    page.get_by_label("Lookback").select_option(lookback)
    page.get_by_role("button", name="Find traces").click()


def test_search_by_service_finds_its_traces(page: Page) -> None:
    page.goto("/search")
    search(page, service="query01-service")
    expect(page.get_by_role("heading", name="1 traces")).to_be_visible()
    # Jaeger's v1 API prints a trace ID whose high half is zero as 16 hex characters.
    assert result_ids(page) == {"0000000000000001"}
    assert "service=query01-service" in page.url


def test_search_by_tag_across_all_services_finds_the_matching_trace(page: Page) -> None:
    page.goto("/search")
    search(page, tags="http.route=/checkout http.status_code=200", lookback="1h")
    expect(page.locator("ol.results li")).to_have_count(1)
    assert result_ids(page) == {CHECKOUT_TRACE}
    expect(page.locator("ol.results")).to_contain_text("frontend: GET /checkout")
    expect(page.locator("ol.results")).to_contain_text("1 errors")


def test_search_state_is_in_the_url_and_back_restores_it(page: Page) -> None:
    page.goto("/search")
    search(page, service="frontend", lookback="1h")
    expect(page.get_by_role("heading", name="13 traces")).to_be_visible()
    expect(page.locator(".scatter .main-svg").first).to_be_visible()
    page.get_by_label("Sort results").select_option("slowest")
    # The checkout trace is the slowest frontend trace.
    expect(page.locator("ol.results .duration").first).to_have_text("100ms")
    save_screenshot(page, "search-frontend", docs_name="search-page.png")
    search(page, service="query01-service", lookback="2d")
    expect(page.get_by_role("heading", name="1 traces")).to_be_visible()
    page.go_back()
    expect(page.get_by_role("heading", name="13 traces")).to_be_visible()
    assert re.search(r"service=frontend", page.url)
    expect(page.get_by_label("Service")).to_have_value("frontend")
    # A shared URL opens the same search.
    page.goto(page.url)
    expect(page.get_by_role("heading", name="13 traces")).to_be_visible()


def test_clicking_a_scatter_point_opens_its_trace(page: Page) -> None:
    page.goto("/search?service=query01-service&lookback=2d&run=1")
    point = page.locator(".scatter .point").first
    expect(point).to_be_visible()
    point.click(force=True)
    expect(page).to_have_url(re.compile(r"/trace/0000000000000001$"))
    expect(page.locator(".span-count")).to_have_text("1")


def test_two_selected_results_open_the_comparison(page: Page) -> None:
    page.goto("/search?service=frontend&lookback=1h&run=1&sort=slowest")
    boxes = page.get_by_role("checkbox")
    expect(boxes).to_have_count(13)
    compare = page.get_by_role("button", name="Compare selected")
    boxes.nth(0).check()
    expect(compare).to_be_disabled()
    boxes.nth(1).check()
    compare.click()
    expect(page).to_have_url(re.compile(rf"/compare/{CHECKOUT_TRACE}/[0-9a-f]+$"))
    expect(page.get_by_role("treegrid")).to_have_count(2)
