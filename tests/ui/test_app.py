"""The UI router without a browser: app routes, static assets, the vendored plotly, no internet."""

from __future__ import annotations

import re

import pytest
from fastapi import APIRouter, FastAPI

from spanlake.ui.app import APP_ROUTES, STATIC_DIR, install_not_found_page, plotly_js_path, router
from tests.query.client import TestClient


@pytest.fixture(scope="module")
def client() -> TestClient:
    app = FastAPI()
    api = APIRouter()
    # Stand-ins for the query API's routes: one GET, one POST-only.
    api.add_api_route("/api/services", lambda: {"data": []}, methods=["GET"])
    api.add_api_route("/api/sql", lambda: {}, methods=["POST"])
    app.include_router(api)
    app.include_router(router())
    install_not_found_page(app)
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


def test_favicon_is_linked_from_the_page_and_served_at_favicon_ico(client: TestClient) -> None:
    page = client.get("/").text
    href = re.search(r'<link rel="icon" href="([^"]+)"', page)
    assert href is not None
    for url in (href.group(1), "/favicon.ico"):
        response = client.get(url)
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/svg+xml"
        assert response.content == (STATIC_DIR / "favicon.svg").read_bytes()


@pytest.mark.parametrize("path", ["/nope", "/trace", "/search/extra/parts", "/favicon.png"])
def test_unknown_ui_paths_get_the_apps_not_found_page(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    # The app itself renders its not-found view (js/main.js), with the navigation around it.
    assert '<script type="module" src="/static/js/main.js">' in response.text


@pytest.mark.parametrize("path", ["/api/nope", "/api", "/static/js/nope.js", "/zipkin/api/v2/nope"])
def test_unknown_api_paths_keep_json_errors(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json()["detail"].lower() == "not found"


def test_wrong_method_on_an_api_path_stays_405(client: TestClient) -> None:
    response = client.get("/api/sql")
    assert response.status_code == 405
    assert response.headers["content-type"] == "application/json"
    assert client.post("/nope").status_code == 404
