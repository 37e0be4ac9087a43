"""The UI router without a browser: app routes, static assets, the vendored plotly, no internet."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI

from spanlake.ui.app import APP_ROUTES, STATIC_DIR, plotly_js_path, router
from tests.query.client import TestClient


@pytest.fixture(scope="module")
def client() -> TestClient:
    app = FastAPI()
    app.include_router(router())
    return TestClient(app)


PAGES = ["/", "/search?service=a", "/trace/abc", "/compare/a/b", "/map", "/sql", "/open"]


@pytest.mark.parametrize("path", PAGES)
def test_app_routes_serve_the_single_page(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/static/js/main.js">' in response.text


def test_every_app_route_has_a_page_case() -> None:
    # A new client-side route must be added to PAGES (and so be checked to serve the app).
    assert len(APP_ROUTES) == len(PAGES)


def test_static_assets_are_served_with_their_types(client: TestClient) -> None:
    js = client.get("/static/js/main.js")
    assert js.status_code == 200
    assert js.headers["content-type"].startswith("text/javascript")
    css = client.get("/static/css/app.css")
    assert css.headers["content-type"].startswith("text/css")


def test_plotly_comes_from_the_installed_python_package(client: TestClient) -> None:
    response = client.get("/static/vendor/plotly.min.js")
    assert response.status_code == 200
    assert response.content == plotly_js_path().read_bytes()


@pytest.mark.parametrize("path", ["/static/../app.py", "/static/%2e%2e/app.py", "/static/js/nope.js"])
def test_files_outside_static_or_missing_are_not_found(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 404


def test_no_asset_fetches_anything_from_the_internet() -> None:
    # spanlake must work in air-gapped clusters: no CDN, no web fonts. The SVG namespace is only a name.
    allowed = {"http://www.w3.org/2000/svg"}
    for path in STATIC_DIR.rglob("*"):
        if path.is_file():
            urls = set(re.findall(r"https?://[^\s'\"`)]+", path.read_text(encoding="utf-8")))
            assert urls <= allowed, f"{path.name} refers to {urls - allowed}"


def test_every_module_import_resolves_to_a_shipped_file() -> None:
    js_dir = STATIC_DIR / "js"
    for module in js_dir.glob("*.js"):
        text = module.read_text(encoding="utf-8")
        for target in re.findall(r"""(?:from|import\()\s*['"](\./[^'"]+)['"]""", text):
            assert (js_dir / target).is_file(), f"{module.name} imports missing {target}"
