"""Browser-test fixtures: one real ``spanlake serve`` filled with Jaeger's fixtures and generated
traces, and headless system Chromium driven by Playwright (its own browser download is not used)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests.paths import REPO
from tests.server import SpanlakeProcess
from tests.ui.data import CHECKOUT_TRACE, fixture_requests, generated_requests

CHROMIUM = os.environ.get("SPANLAKE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1280, "height": 860}
# expect() polls with its own timeout (5 s by default), separate from the page's. The RED charts of
# the service map took over 5 s under load once: every wait polls for up to 15 s, like page actions.
WAIT_MS = 15_000
expect.set_options(timeout=WAIT_MS)


def output_dir() -> Path:
    return Path(os.environ.get("SPANLAKE_TEST_OUTPUT") or REPO / "test-output")


def save_screenshot(page: Page, name: str, docs_name: str | None = None) -> Path:
    """Every browser test leaves a screenshot; the README's images are refreshed on request
    (SPANLAKE_UPDATE_DOCS_IMAGES=1) so that a normal run never changes tracked files."""
    path = output_dir() / "screenshots" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path))
    if docs_name and os.environ.get("SPANLAKE_UPDATE_DOCS_IMAGES") == "1":
        docs = REPO / "docs" / "images" / docs_name
        docs.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(docs))
    return path


def post_otlp(server: SpanlakeProcess, body: dict[str, object]) -> None:
    response = httpx.post(f"{server.url('otlp_http')}/v1/traces", content=json.dumps(body),
                          headers={"Content-Type": "application/json"}, timeout=30)
    assert response.status_code == 200, response.text


def wait_for_trace(server: SpanlakeProcess, trace_id: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if httpx.get(f"{server.query_url}/api/traces/{trace_id}", timeout=10).status_code == 200:
            return
        time.sleep(0.2)
    raise TimeoutError(f"trace {trace_id} not searchable after {timeout}s")


@pytest.fixture(scope="session")
def ui_base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real server holding Jaeger's storage fixtures (as of yesterday) and the generated traces.

    SPANLAKE_UI_TEST_URL points the tests at a server that already holds exactly that data instead
    (for iterating on the UI without restarting a server per run)."""
    if os.environ.get("SPANLAKE_UI_TEST_URL"):
        yield os.environ["SPANLAKE_UI_TEST_URL"]
        return
    server = SpanlakeProcess(tmp_path_factory.mktemp("ui") / "data").start()
    try:
        for body in [*fixture_requests(), *generated_requests()]:
            post_otlp(server, body)
        wait_for_trace(server, CHECKOUT_TRACE)
        yield server.query_url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="session")
def browser_context(browser: Browser, ui_base_url: str) -> Iterator[BrowserContext]:
    # One context for the session: its HTTP cache keeps plotly.js (4.5 MB) parsed-once-fetched-once.
    context = browser.new_context(viewport=VIEWPORT, base_url=ui_base_url, accept_downloads=True)
    yield context
    context.close()


@pytest.fixture
def page(browser_context: BrowserContext, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh tab; when the test ends (passed or failed) its final state is saved as a screenshot."""
    pg = browser_context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.set_default_timeout(WAIT_MS)
    yield pg
    save_screenshot(pg, request.node.name)
    pg.close()
    # An uncaught exception in the app fails the test even if the page looked right.
    assert not errors, errors
