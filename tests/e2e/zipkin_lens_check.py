"""Zipkin's own UI (Lens) against a real ``spanlake serve``: a manual check, not part of ``make test``.

Lens is built from the openzipkin/zipkin repository, which CI cannot reach; ``make test`` checks the
exact requests Lens makes instead (``tests/query/test_zipkin_api.py``). With a Lens build at hand::

    git clone --depth 1 --branch 3.6.1 https://github.com/openzipkin/zipkin && cd zipkin/zipkin-lens
    npm ci && npx vite build --base=/zipkin/
    .venv/bin/python -m tests.e2e.zipkin_lens_check path/to/zipkin-lens/build [screenshot-dir]

It starts spanlake with the zipkin-lens test traces, serves the build at ``/zipkin/`` with
``/zipkin/api`` and ``/zipkin/config.json`` passed to spanlake's Zipkin port (Zipkin's server serves
Lens the same way), then in headless Chromium searches, opens a trace and the dependency graph,
saving a screenshot of each and failing on any page error or missing content.
"""

from __future__ import annotations

import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import uvicorn
from playwright.sync_api import Page, sync_playwright
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from tests.server import SpanlakeProcess
from tests.ui.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.zipkin_data import LENS_FILES, lens_trace, normalized, shifted


def lens_app(build: Path, upstream: str) -> Starlette:
    async def proxy(request: Request) -> Response:
        async with httpx.AsyncClient(timeout=30) as client:
            answer = await client.get(f"{upstream}{request.url.path}", params=request.query_params)
        return Response(answer.content, answer.status_code, media_type=answer.headers.get("content-type"))

    async def index(_: Request) -> FileResponse:
        return FileResponse(build / "index.html")

    return Starlette(routes=[
        Route("/zipkin/api/{rest:path}", proxy),
        Route("/zipkin/config.json", proxy),
        Mount("/zipkin/static", StaticFiles(directory=build / "static")),
        Route("/zipkin/{rest:path}", index),
    ])


def serve_in_thread(app: Starlette) -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{sock.getsockname()[1]}/zipkin/"


def check(page: Page, base: str, now_ms: int, shots: Path) -> None:
    page.goto(f"{base}?serviceName=frontend&lookback=1d&endTs={now_ms}&limit=10")
    page.get_by_text("frontend: get /").wait_for(timeout=15_000)
    page.screenshot(path=str(shots / "zipkin-lens-search.png"))
    trace_id = normalized(lens_trace("smartthings-oauth-authorization.json")[0])["traceId"]
    page.goto(f"{base}traces/{trace_id}")
    page.get_by_text("datamgmt: get /oauth/authorize").first.wait_for(timeout=15_000)
    page.screenshot(path=str(shots / "zipkin-lens-trace.png"))
    page.goto(f"{base}dependency?endTs={now_ms}&startTs={now_ms - 86_400_000}")
    page.get_by_role("button", name="Run Query").click()
    page.locator("canvas, svg").first.wait_for(timeout=15_000)
    page.wait_for_timeout(2_000)  # the graph animates into place
    page.screenshot(path=str(shots / "zipkin-lens-dependencies.png"))


def main(build: Path, shots: Path) -> None:
    shots.mkdir(parents=True, exist_ok=True)
    now_us = time.time_ns() // 1000
    with tempfile.TemporaryDirectory() as tmp:
        server = SpanlakeProcess(Path(tmp) / "data").start()
        try:
            for i, name in enumerate(LENS_FILES):
                spans = shifted(lens_trace(name), now_us - (i + 1) * 60_000_000)
                httpx.post(f"{server.url('zipkin')}/api/v2/spans", json=spans, timeout=30).raise_for_status()
            time.sleep(2)  # searchable within about a second
            base = serve_in_thread(lens_app(build, server.url("zipkin")))
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                errors: list[str] = []
                page.on("pageerror", lambda error: errors.append(str(error)))
                check(page, base, now_us // 1000, shots)
                browser.close()
            if errors:
                raise SystemExit(f"Lens page errors: {errors}")
        finally:
            server.stop()
    print(f"Lens searched, opened a trace and drew the dependencies; screenshots in {shots}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2] if len(sys.argv) > 2 else "test-output/zipkin-lens"))
