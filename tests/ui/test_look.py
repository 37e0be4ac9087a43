"""Across pages: dark theme (system setting and toggle), one colour per service, relative times,
the 800 px layout, the favicon and the not-found page."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.ui.conftest import save_screenshot
from tests.ui.data import CHECKOUT_TRACE, browse_trace_id

pytestmark = pytest.mark.browser

DARK_BG = "rgb(20, 24, 31)"
LIGHT_BG = "rgb(255, 255, 255)"


@pytest.fixture
def fresh_page(browser: Browser, ui_base_url: str, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A tab in its own context: the theme choice lives in localStorage and must not leak to other tests."""
    context = browser.new_context(viewport={"width": 1280, "height": 860}, base_url=ui_base_url)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.set_default_timeout(15_000)
    yield page
    save_screenshot(page, request.node.name)
    context.close()
    assert not errors, errors


def background(page: Page) -> str:
    return str(page.evaluate("getComputedStyle(document.body).backgroundColor"))


def test_theme_follows_the_system_setting(fresh_page: Page) -> None:
    page = fresh_page
    page.emulate_media(color_scheme="dark")
    page.goto(f"/trace/{CHECKOUT_TRACE}")
    expect(page.locator(".trace-page[data-ready=true]")).to_be_attached()
    assert background(page) == DARK_BG
    expect(page.get_by_role("button", name="Dark theme")).to_have_attribute("aria-pressed", "true")
    page.emulate_media(color_scheme="light")
    page.wait_for_function(f"getComputedStyle(document.body).backgroundColor === '{LIGHT_BG}'")
    expect(page.get_by_role("button", name="Dark theme")).to_have_attribute("aria-pressed", "false")


def test_toggle_overrides_the_system_and_is_remembered(fresh_page: Page) -> None:
    page = fresh_page
    page.emulate_media(color_scheme="light")
    page.goto("/search?service=frontend&lookback=1h&run=1")
    expect(page.locator(".scatter .main-svg").first).to_be_visible()
    toggle = page.get_by_role("button", name="Dark theme")
    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "true")
    assert background(page) == DARK_BG
    # Charts already drawn take the theme's text colour too.
    page.wait_for_function(
        "document.querySelector('.scatter.js-plotly-plot')._fullLayout.font.color === '#dde3ea'")
    page.reload()
    expect(page.get_by_role("button", name="Dark theme")).to_have_attribute("aria-pressed", "true")
    assert background(page) == DARK_BG
    save_screenshot(page, "search-dark")
    # Back to what the system prefers: the choice is forgotten and the page follows the system again.
    page.get_by_role("button", name="Dark theme").click()
    assert background(page) == LIGHT_BG
    assert page.evaluate("localStorage.getItem('spanlake.theme')") is None
    page.emulate_media(color_scheme="dark")
    page.wait_for_function(f"getComputedStyle(document.body).backgroundColor === '{DARK_BG}'")


def chip_colors(page: Page) -> dict[str, str]:
    chips = page.locator(".svc-chip[data-service]").evaluate_all(
        "els => els.map(e => [e.dataset.service, getComputedStyle(e).borderLeftColor])")
    return dict(chips)


def test_a_service_has_the_same_colour_on_every_page(page: Page) -> None:
    page.goto("/search?service=frontend&lookback=1h&run=1")
    expect(page.locator("ol.results li")).to_have_count(13)
    on_search = chip_colors(page)
    assert {"frontend", "cart", "db", "checkout", "payment"} <= on_search.keys()
    page.goto(f"/trace/{CHECKOUT_TRACE}")
    expect(page.locator(".trace-page[data-ready=true]")).to_be_attached()
    on_trace = chip_colors(page)
    marks = page.locator(".wf-row").evaluate_all(
        "els => els.map(e => [e.querySelector('.wf-svc').textContent,"
        " getComputedStyle(e.querySelector('.wf-svc-mark')).backgroundColor])")
    page.goto(f"/trace/{browse_trace_id(3)}")
    expect(page.locator(".trace-page[data-ready=true]")).to_be_attached()
    on_other_trace = chip_colors(page)
    page.goto("/map")
    expect(page.locator("svg.service-graph")).to_be_visible()
    nodes = page.locator("svg.service-graph g.node").evaluate_all(
        "els => els.map(e => [e.dataset.service, getComputedStyle(e.querySelector('rect')).fill])")
    for service, color in on_trace.items():
        assert on_search[service] == color, service
    for service, color in [*marks, *on_other_trace.items(), *nodes]:
        assert on_search[service] == color, service
    # Five services, five colours: the palette keeps the test data's services apart.
    assert len({on_search[s] for s in ("frontend", "cart", "db", "checkout", "payment")}) == 5


def test_result_lists_show_relative_times_with_the_absolute_time_on_hover(page: Page) -> None:
    page.goto("/search?service=frontend&lookback=1h&run=1&sort=slowest")
    first = page.locator("ol.results li").first
    expect(first.locator(".result-title")).to_have_text("frontend: GET /checkout")
    when = first.locator("time.rel-time")
    # The checkout trace started 5 minutes before the server was filled.
    expect(when).to_have_text(re.compile(r"^\d+ min ago$"))
    assert int((when.text_content() or "0").split()[0]) >= 5
    expect(when).to_have_attribute("title", re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$"))
    # The machine-readable time is the trace's start.
    assert when.get_attribute("datetime") == page.evaluate(
        "new Date(Number(document.querySelector('ol.results time').dataset.us) / 1000).toISOString()")


NARROW_PAGES = [
    ("search", "/search?service=frontend&lookback=1h&run=1", ".scatter .main-svg"),
    ("trace", f"/trace/{CHECKOUT_TRACE}", ".trace-page[data-ready=true]"),
    ("map", "/map?service=checkout", ".red-chart .main-svg"),
    ("sql", "/sql?q=SELECT+*+FROM+spans", "table.sql-results"),
    ("compare", f"/compare/{browse_trace_id(1)}/{CHECKOUT_TRACE}", ".compare-waterfalls .wf-row"),
    ("open", "/open", ".dropzone"),
]


@pytest.mark.parametrize(("name", "url", "ready"), NARROW_PAGES, ids=[p[0] for p in NARROW_PAGES])
def test_every_page_fits_an_800_px_window(page: Page, name: str, url: str, ready: str) -> None:
    page.set_viewport_size({"width": 800, "height": 900})
    page.goto(url)
    expect(page.locator(ready).first).to_be_attached()
    if name == "trace":
        page.locator(".wf-row", has=page.locator(".wf-op", has_text="PlaceOrder")).click()
        expect(page.locator(".span-detail")).to_be_visible()
        box = page.locator(".span-detail").bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 800
    # Nothing sticks out to the right: the page never scrolls sideways.
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 800
    for link in ("Search", "Service map", "SQL", "Open file"):
        link_box = page.get_by_role("navigation").get_by_role("link", name=link).bounding_box()
        assert link_box is not None and link_box["x"] + link_box["width"] <= 800


def test_unknown_page_shows_the_apps_not_found_page(page: Page) -> None:
    response = page.goto("/nope")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    expect(page.locator(".not-found")).to_contain_text("/nope")
    page.get_by_role("link", name="Search traces").click()
    expect(page.get_by_role("button", name="Find traces")).to_be_visible()
    # The real server's API keeps its JSON errors for unknown paths.
    api = page.request.get("/api/nope")
    assert api.status == 404 and api.headers["content-type"] == "application/json"
    assert api.json() == {"detail": "Not Found"}


def test_the_page_has_a_favicon(page: Page) -> None:
    page.goto("/search")
    href = page.locator('link[rel="icon"]').get_attribute("href")
    assert href
    for url in (href, "/favicon.ico"):
        response = page.request.get(url)
        assert response.status == 200
        assert response.headers["content-type"] == "image/svg+xml"
        assert response.body().startswith(b"<svg")
