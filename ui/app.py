"""The web UI: a static single-page app served by the query app.

The UI talks to the query API over HTTP only (Jaeger ``/api/...`` and ``/api/sql``), so this module
imports nothing from ``storage``, ``collector`` or ``query``. There is no build step and nothing is
fetched from the internet at run time: plotly.js comes from the installed ``plotly`` package, so the
UI works in air-gapped clusters.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

STATIC_DIR = Path(__file__).resolve().parent / "static"

# Client-side routes: each serves index.html and the app's router (js/main.js) picks the view, so a
# shared or reloaded URL opens the same view.
APP_ROUTES = (
    "/",
    "/search",
    "/trace/{trace_id}",
    "/compare/{trace_a}/{trace_b}",
    "/map",
    "/sql",
    "/open",
)

_MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}


@lru_cache(maxsize=1)
def plotly_js_path() -> Path:
    """The ``plotly.min.js`` shipped inside the installed ``plotly`` Python package."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("the plotly package is not installed")
    path = Path(spec.origin).parent / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the plotly package")
    return path


def _index() -> HTMLResponse:
    # no-cache: the page is tiny and must pick up new asset versions after an upgrade.
    html = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    return HTMLResponse(html, headers={"Cache-Control": "no-cache"})


def _static_file(path: str) -> Response:
    target = (STATIC_DIR / path).resolve()
    # Refuse anything that escapes the static directory (``..`` or absolute paths).
    if not target.is_relative_to(STATIC_DIR) or not target.is_file():
        raise HTTPException(status_code=404, detail="not found")
    media = _MEDIA_TYPES.get(target.suffix, "application/octet-stream")
    return FileResponse(target, media_type=media, headers={"Cache-Control": "no-cache"})


def _plotly() -> Response:
    try:
        path = plotly_js_path()
    except FileNotFoundError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
    # The bundle only changes with the plotly package version, so let browsers keep it for a day.
    return FileResponse(path, media_type=_MEDIA_TYPES[".js"], headers={"Cache-Control": "max-age=86400"})


def _favicon() -> Response:
    # Browsers ask for /favicon.ico whatever the page links; an SVG icon is understood there as well.
    return FileResponse(STATIC_DIR / "favicon.svg", media_type=_MEDIA_TYPES[".svg"],
                        headers={"Cache-Control": "max-age=86400"})


async def not_found_handler(request: Request, exc: Exception) -> Response:
    """The app's 404s. The API (and ``/static``) keep FastAPI's JSON error; any other unknown path gets
    the app with status 404, and the app's router shows its own not-found page with links back in.
    Installed as the query app's ``HTTPException`` handler, so 405s and other errors stay as they were."""
    if not isinstance(exc, StarletteHTTPException):
        raise exc
    # An ``api`` segment anywhere (``/api/...``, ``/zipkin/api/v2/...``) or ``/static/`` is not a page.
    segments = request.url.path.strip("/").split("/")
    is_page = "api" not in segments and segments[0] != "static"
    if exc.status_code == 404 and is_page and request.method in ("GET", "HEAD"):
        html = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
        return HTMLResponse(html, status_code=404, headers={"Cache-Control": "no-cache"})
    return await http_exception_handler(request, exc)


def install_not_found_page(app: FastAPI) -> None:
    """Answer unknown UI paths of ``app`` with the app's not-found page (see ``not_found_handler``)."""
    app.add_exception_handler(StarletteHTTPException, not_found_handler)


def router() -> APIRouter:
    """Routes for the UI pages, ``/static/...`` assets, ``/static/vendor/plotly.min.js`` and the favicon
    (unknown paths are ``install_not_found_page``'s)."""
    api = APIRouter(include_in_schema=False)
    for route in APP_ROUTES:
        api.add_api_route(route, _index, methods=["GET"], response_class=HTMLResponse)
    # Registered before the catch-all so the vendored bundle is served from the plotly package.
    api.add_api_route("/static/vendor/plotly.min.js", _plotly, methods=["GET"])
    api.add_api_route("/static/{path:path}", _static_file, methods=["GET"])
    api.add_api_route("/favicon.ico", _favicon, methods=["GET"])
    return api
