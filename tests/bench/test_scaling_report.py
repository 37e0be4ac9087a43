from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from bench import measure, scaling_report
from bench.scaling import Point, Scaling, parse_sizes

# The UI tests' browser: system Chromium driven by Playwright.
CHROMIUM = os.environ.get("SPANLAKE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


def result(engine: str, spans: int, **fields) -> measure.Result:
    return measure.Result(engine=engine, version=f"{engine} 1.0", spans=spans, **fields)


def scaling_of(*points: Point, sizes: list[int], peer_sizes: list[int]) -> Scaling:
    return Scaling(command="python -m bench.run --scaling", started="now", machine={"cores": "2"},
                   sizes=sizes, peer_sizes=peer_sizes, points=list(points))  # fmt: skip


def line(markdown: str, label: str) -> list[str]:
    row = next(r for r in markdown.splitlines() if r.startswith(f"| {label}"))
    return [cell.strip() for cell in row.strip("|").split("|")]


def at_100m(**fields) -> Point:
    return Point(spans=100_000_000, spanlake=result("spanlake", 100_000_000, **fields))


def test_sizes_are_sorted_unique_and_whole_traces():
    assert parse_sizes("10000000, 1000000,1_000_000") == [1_000_000, 10_000_000]
    assert parse_sizes("") == []
    with pytest.raises(ValueError, match="multiple of 10"):
        parse_sizes("1000005")


def test_size_names():
    assert [scaling_report.size_name(n) for n in (100_000_000, 200_000, 12_345)] == ["100M", "200k", "12,345"]


def test_columns_follow_which_engine_ran_at_which_size():
    small = Point(
        spans=1_000_000,
        spanlake=result("spanlake", 1_000_000, storage_bytes=50_000_000, extra={"restart_to_ready_s": 1.5}),
        peer=result("peer", 1_000_000, storage_bytes=80_000_000),
    )
    big = Point(spans=10_000_000, spanlake=result("spanlake", 10_000_000, storage_bytes=400_000_000))
    text = scaling_report.markdown(
        scaling_of(small, big, sizes=[1_000_000, 10_000_000], peer_sizes=[1_000_000])
    )
    header = text.splitlines()[next(i for i, r in enumerate(text.splitlines()) if r.startswith("| what"))]
    assert [c.strip() for c in header.strip("|").split("|")][1:4] == [
        "1M spanlake",
        "1M peer",
        "10M spanlake",
    ]
    assert line(text, "storage: bytes per span")[1:4] == ["50.0", "80.0", "40.0"]
    # The peer has no restart to measure: "-", not "not measured".
    assert line(text, "restart to ready")[1:4] == ["1.50", "-", "not measured"]
    assert "PARTIAL" not in text


def test_targets_are_judged_at_100m_only():
    text = scaling_report.markdown(
        scaling_of(
            at_100m(
                by_id_ms={"hit_p50": 14.0},
                searches_ms={"service_operation": 501.0},
                search_peak_rss=2047 << 20,
                ingest_peak_rss=2049 << 20,
                extra={"restart_to_ready_s": 9.5},
            ),
            sizes=[100_000_000],
            peer_sizes=[],
        )
    )
    assert line(text, "trace by ID, no time range: hit p50")[2:] == ["<= 15", "pass"]
    assert line(text, "search p50 (ms): service + operation")[2:] == ["<= 500", "FAIL"]
    assert line(text, "peak server RSS during searches")[2:] == ["<= 2,048", "pass"]
    assert line(text, "peak server RSS during ingest")[2:] == ["<= 2,048", "FAIL"]
    assert line(text, "restart to ready")[2:] == ["<= 10", "pass"]
    assert line(text, "trace by ID, no time range: hit p99")[2:] == ["-", "-"]  # no target set
    small = Point(spans=200_000, spanlake=result("spanlake", 200_000, by_id_ms={"hit_p50": 1.0}))
    text = scaling_report.markdown(scaling_of(small, sizes=[200_000, 100_000_000], peer_sizes=[]))
    assert line(text, "trace by ID, no time range: hit p50")[2:] == ["<= 15", "not run at 100M"]
    assert "PARTIAL" in text  # 100M was asked for and is missing


def test_chart_opens_offline_with_the_installed_plotly(tmp_path: Path):
    points = [
        Point(spans=n, spanlake=result("spanlake", n, by_id_ms={"hit_p50": n / 1e5}), peer=result("peer", n))
        for n in (100_000, 200_000)
    ]
    html = tmp_path / "scaling.html"
    scaling_report.chart(scaling_of(*points, sizes=[100_000, 200_000], peer_sizes=[100_000, 200_000]), html)
    assert (tmp_path / "plotly.min.js").stat().st_size > 1_000_000
    text = html.read_text()
    assert 'src="plotly.min.js"' in text and "cdn.plot.ly" not in text
    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page()
            page.on("request", lambda request: requests.append(request.url))
            page.goto(html.as_uri())
            page.wait_for_selector(".js-plotly-plot .main-svg", timeout=30_000)
            panels = page.evaluate("document.querySelector('.js-plotly-plot').data.length")
        finally:
            browser.close()
    assert panels > 0
    assert requests and all(url.startswith("file://") for url in requests), requests


def test_panel_titles_fit_a_third_of_the_page():
    titles = [scaling_report.panel_title(row.label) for row in scaling_report.measures()]
    assert all(len(t) <= 48 for t in titles)
    assert "restart to ready (s)" in titles
    assert "search p50 ms: search that matches nothing, 1 h" in titles
