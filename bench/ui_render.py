"""How long until the trace waterfall of a 10,000- and a 100,000-span trace is interactive in headless
Chromium, and how smooth it scrolls.

    .venv/bin/python -m bench.ui_render                  # starts its own `spanlake serve`
    .venv/bin/python -m bench.ui_render --url http://127.0.0.1:16686 --otlp-url http://127.0.0.1:4318

Each trace is generated as OTLP/JSON and reaches the page three ways:
- ``stored``: the trace is ingested over OTLP/HTTP, then /trace/{id} is loaded.
- ``jaeger``: the stored trace's Jaeger JSON (GET /api/traces/{id}) saved to a file and opened on the
  file-open page (/open): the browser alone, no server work, so this is the UI's own cost.
- ``open``: the OTLP/JSON file opened on /open: the server's stateless POST /api/transform converts
  it, the waterfall renders. Nothing is stored.
"First paint" is from the navigation (stored) or the file's selection (jaeger, open) to the frame after
the waterfall's first rows were drawn; "of which server" is the part spent waiting for the server.
Then the benchmark scrolls the waterfall top to bottom as it opens (a huge trace opens with its deep
levels collapsed, see ``ROW_BUDGET`` in ui/static/js/waterfall.js), presses *Expand all* and scrolls
all rows again, reporting frame times and the longest task over 50 ms (Long Tasks API; 0 = none).
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page, sync_playwright

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SERVICES = [f"service-{i:02d}" for i in range(20)]
FANOUT = 8


def generate_trace(n_spans: int, seed: int = 1) -> tuple[str, dict[str, Any]]:
    """One OTLP/JSON trace of ``n_spans`` spans: an 8-ary tree, children inside their parent's time."""
    rng = random.Random(seed)
    trace_id = f"{seed:08x}" + "be" * 12
    base = time.time_ns() - 60 * 10**9
    starts = [base]
    ends = [base + 10 * 10**9]
    by_service: dict[str, list[dict[str, Any]]] = {}
    for i in range(n_spans):
        parent = (i - 1) // FANOUT if i else -1
        if i:
            p_start, p_end = starts[parent], ends[parent]
            length = p_end - p_start
            start = p_start + int(length * rng.random() * 0.6)
            starts.append(start)
            ends.append(start + max(1000, int(length * rng.uniform(0.05, 0.4))))
        service = SERVICES[(i // 50) % len(SERVICES)] if i else "frontend"
        span: dict[str, Any] = {
            "traceId": trace_id,
            "spanId": f"{i + 1:016x}",
            "name": f"op-{i % 37}",
            "kind": 2 if i % 3 == 0 else 3,
            "startTimeUnixNano": str(starts[i]),
            "endTimeUnixNano": str(ends[i]),
            "attributes": [
                {"key": "i", "value": {"intValue": str(i)}},
                {"key": "http.route", "value": {"stringValue": f"/r/{i % 11}"}},
            ],
            "status": {"code": 2} if i % 97 == 5 else {},
        }
        if parent >= 0:
            span["parentSpanId"] = f"{parent + 1:016x}"
        by_service.setdefault(service, []).append(span)
    doc = {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": s}}]},
                "scopeSpans": [{"scope": {"name": "bench"}, "spans": spans}],
            }
            for s, spans in by_service.items()
        ]
    }
    return trace_id, doc


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def spanlake_serve() -> Iterator[tuple[str, str]]:
    """A throwaway ``spanlake serve`` on free ports; yields (query URL, OTLP/HTTP URL)."""
    ports = {
        flag: _free_port()
        for flag in (
            "--query-port",
            "--otlp-http-port",
            "--otlp-grpc-port",
            "--jaeger-grpc-port",
            "--jaeger-http-port",
            "--jaeger-compact-port",
            "--jaeger-binary-port",
            "--sampling-port",
            "--admin-port",
            "--zipkin-port",
        )
    }
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp, "server.log")
        args = [
            sys.executable,
            "-m",
            "spanlake",
            "serve",
            "--data-dir",
            str(Path(tmp, "data")),
            "--host",
            "127.0.0.1",
            "--max-request-bytes",
            str(512 * 2**20),
            # The defaults (50,000 spans, 64 MiB per trace) would cut the 100,000-span trace in half.
            "--max-spans-per-trace",
            str(1_000_000),
            "--max-bytes-per-trace",
            str(2**30),
        ]
        for flag, port in ports.items():
            args += [flag, str(port)]
        with log.open("wb") as out:
            proc = subprocess.Popen(args, stdout=out, stderr=out)
        try:
            deadline = time.monotonic() + 60
            while "spanlake ready" not in log.read_text(errors="replace"):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"spanlake serve did not start:\n{log.read_text(errors='replace')}")
                time.sleep(0.1)
            yield f"http://127.0.0.1:{ports['--query-port']}", f"http://127.0.0.1:{ports['--otlp-http-port']}"
        finally:
            proc.terminate()
            proc.wait(60)


# Collects the browser's long tasks (main-thread work over 50 ms) from the moment the page starts.
LONG_TASKS_INIT = """
window.__longTasks = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) window.__longTasks.push({start: e.startTime, duration: e.duration});
}).observe({type: 'longtask', buffered: true});
"""


def _wait_ready(page: Page, timeout_ms: float) -> None:
    page.wait_for_selector(".trace-page[data-ready=true]", state="attached", timeout=timeout_ms)
    page.wait_for_function("window.spanlakeTrace && window.spanlakeTrace.paintedAt", timeout=timeout_ms)


def scroll_frames(page: Page) -> dict[str, float]:
    """Scroll the waterfall top to bottom in 60 steps, one per two animation frames; returns frame
    times (ms) and the longest task the browser reported while scrolling (0 if none over 50 ms)."""
    return page.evaluate("""async () => {
      const vp = document.querySelector('.wf-viewport');
      // Start once the page is idle, as a reader would: loading's own work (and its garbage
      // collection) is first paint's cost, not scrolling's.
      for (let i = 0; i < 2; i++) await new Promise((r) => requestIdleCallback(r, {timeout: 3000}));
      // The UI's own work per frame: time spent drawing the virtual rows.
      const wf = window.spanlakeTrace.waterfall;
      const draw = wf.renderRows;
      const renders = [];
      wf.renderRows = function () {
        const t = performance.now(); draw.call(this); renders.push(performance.now() - t);
      };
      const frames = [];
      const total = vp.scrollHeight - vp.clientHeight;
      const began = performance.now();
      let last = began;
      for (let k = 1; k <= 60; k++) {
        vp.scrollTop = total * k / 60;
        await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
        const now = performance.now(); frames.push((now - last) / 2); last = now;
      }
      wf.renderRows = draw;
      renders.sort((a, b) => a - b);
      // Long-task entries are delivered asynchronously: give the observer a moment.
      await new Promise((r) => setTimeout(r, 200));
      const tasks = window.__longTasks.filter((t) => t.start >= began && t.start <= last);
      frames.sort((a, b) => a - b);
      return {median_ms: frames[30], max_ms: frames[59], long_tasks: tasks.length,
              render_median_ms: renders[renders.length >> 1], render_max_ms: renders[renders.length - 1],
              longest_task_ms: Math.max(0, ...tasks.map((t) => t.duration)),
              rendered_rows: Number(vp.dataset.renderedRows), rows: Number(vp.getAttribute('aria-rowcount'))};
    }""")


def scroll_both(page: Page) -> dict[str, Any]:
    """Scroll the waterfall as it opens (deep levels collapsed for huge traces), then expanded fully."""
    opened = scroll_frames(page)
    page.get_by_role("button", name="Expand all").first.click()
    page.wait_for_function(
        "Number(document.querySelector('.wf-viewport').getAttribute('aria-rowcount'))"
        " === window.spanlakeTrace.model.spans.length")
    expanded = scroll_frames(page)
    return {**opened, "expanded": expanded}


def measure_open(page: Page, url: str, path: Path) -> dict[str, Any]:
    page.goto(f"{url}/open")
    began = time.perf_counter()
    page.locator("input[type=file]").set_input_files(str(path))
    _wait_ready(page, 600_000)
    ready = time.perf_counter() - began
    return {
        "interactive_s": ready,
        "first_paint_ms": page.evaluate("window.spanlakeTrace.paintedAt - window.spanlakeOpenStart"),
        "build_ms": page.evaluate("window.spanlakeTrace.buildMs"),
        "server_ms": page.evaluate("(window.spanlakeOpenTiming || {transformMs: 0}).transformMs"),
        **scroll_both(page),
    }


def measure_stored(page: Page, url: str, trace_id: str) -> dict[str, Any]:
    began = time.perf_counter()
    page.goto(f"{url}/trace/{trace_id}")
    _wait_ready(page, 600_000)
    ready = time.perf_counter() - began
    fetch_ms = page.evaluate(
        "performance.getEntriesByType('resource').filter(e => e.name.includes('/api/traces/'))"
        ".map(e => e.responseEnd - e.requestStart)[0]"
    )
    return {
        "interactive_s": ready,
        # performance.now() counts from the navigation's start: first paint of the waterfall.
        "first_paint_ms": page.evaluate("window.spanlakeTrace.paintedAt"),
        "build_ms": page.evaluate("window.spanlakeTrace.buildMs"),
        "server_ms": fetch_ms,
        **scroll_both(page),
    }


INGEST_BATCH = 10_000  # spans per OTLP request, well under the server's --max-spans-per-request


def batches(doc: dict[str, Any], size: int = INGEST_BATCH) -> Iterator[dict[str, Any]]:
    """The trace as OTLP requests of at most ``size`` spans, as an SDK's batch exporter sends it."""
    for resource_spans in doc["resourceSpans"]:
        for scope_spans in resource_spans["scopeSpans"]:
            spans = scope_spans["spans"]
            for k in range(0, len(spans), size):
                part = {**scope_spans, "spans": spans[k:k + size]}
                yield {"resourceSpans": [{**resource_spans, "scopeSpans": [part]}]}


def ingest(otlp_url: str, query_url: str, doc: dict[str, Any], trace_id: str) -> None:
    for batch in batches(doc):
        r = httpx.post(f"{otlp_url}/v1/traces", content=json.dumps(batch).encode(),
                       headers={"Content-Type": "application/json"}, timeout=600)
        r.raise_for_status()
    deadline = time.monotonic() + 120
    while httpx.get(f"{query_url}/api/traces/{trace_id}", timeout=600).status_code != 200:
        if time.monotonic() > deadline:
            raise TimeoutError(f"trace {trace_id} not readable")
        time.sleep(0.5)


HEADER = (
    f"{'spans':>8} {'path':>7} {'first paint':>12} {'of which server':>16} {'model':>8} {'rows':>7} "
    f"{'scroll med/max':>15} {'longest task':>13} {'rows drawn med/max':>19} "
    f"{'expanded: med/max':>18} {'longest task':>13} {'rows drawn med/max':>19} {'DOM rows':>9}"
)


def _row(n: int, mode: str, r: dict[str, Any]) -> str:
    e = r["expanded"]
    return (
        f"{n:>8} {mode:>7} {r['first_paint_ms'] / 1000:>11.2f}s {r['server_ms'] / 1000:>15.2f}s "
        f"{r['build_ms']:>6.0f}ms {r['rows']:>7} "
        f"{r['median_ms']:>6.1f}/{r['max_ms']:>5.1f}ms {r['longest_task_ms']:>11.0f}ms "
        f"{r['render_median_ms']:>10.1f}/{r['render_max_ms']:>5.1f}ms "
        f"{e['median_ms']:>9.1f}/{e['max_ms']:>5.1f}ms {e['longest_task_ms']:>11.0f}ms "
        f"{e['render_median_ms']:>10.1f}/{e['render_max_ms']:>5.1f}ms {r['rendered_rows']:>9}"
    )


def run(url: str, otlp_url: str | None, sizes: list[int], modes: list[str], chromium: str) -> None:
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        print(HEADER)
        for seed, n in enumerate(sizes, start=1):
            trace_id, doc = generate_trace(n, seed)
            path = Path(tmp, f"trace-{n}.json")
            path.write_text(json.dumps(doc))
            ingested = False
            for mode in modes:
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.add_init_script(LONG_TASKS_INIT)
                page.set_default_timeout(600_000)
                if mode == "open":
                    result = measure_open(page, url, path)
                else:
                    if otlp_url is None:
                        raise SystemExit("--otlp-url is needed for the stored and jaeger paths")
                    if not ingested:
                        ingest(otlp_url, url, doc, trace_id)
                        ingested = True
                    if mode == "stored":
                        result = measure_stored(page, url, trace_id)
                    else:
                        jaeger = Path(tmp, f"jaeger-{n}.json")
                        jaeger.write_bytes(httpx.get(f"{url}/api/traces/{trace_id}", timeout=600).content)
                        result = measure_open(page, url, jaeger)
                spans = result["expanded"]["rows"]
                assert spans == n, f"the expanded waterfall shows {spans} rows, expected {n}"
                print(_row(n, mode, result), flush=True)
                page.close()
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", help="query URL of a running spanlake (default: start one)")
    parser.add_argument("--otlp-url", help="OTLP/HTTP URL of that spanlake (for the stored path)")
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated span counts")
    parser.add_argument("--modes", default="stored,jaeger,open", help="comma-separated: stored, jaeger, open")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    modes = args.modes.split(",")
    if args.url:
        run(args.url, args.otlp_url, sizes, modes, args.chromium)
        return
    with spanlake_serve() as (url, otlp_url):
        run(url, otlp_url, sizes, modes, args.chromium)


if __name__ == "__main__":
    main()
