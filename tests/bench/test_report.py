from __future__ import annotations

from pathlib import Path

from bench import measure, report
from bench.run import Run

MANIFEST = {
    "spans": 1000, "traces": 100, "requests": 1, "seed": 1, "generate_seconds": 0.1,
    "searches": {"recent_traces": 30, "attr_traces": 5, "slow_traces": 12},
}  # fmt: skip


def result(engine: str, **fields) -> measure.Result:
    return measure.Result(engine=engine, version=f"{engine} 1.0", spans=1000, **fields)


def run_of(ours: measure.Result | None, peer: measure.Result | None) -> Run:
    return Run(command="python -m bench.run", started="now", machine={"cores": "2"}, manifest=MANIFEST,
               floor_cpu_s_per_m=0.5, spanlake=ours, peer=peer)  # fmt: skip


def line(markdown: str, label: str) -> list[str]:
    row = next(r for r in markdown.splitlines() if r.startswith(f"| {label}"))
    return [cell.strip() for cell in row.strip("|").split("|")]


def test_bar_needs_both_the_absolute_limit_and_the_peer_ratio():
    # Issue 11: attribute search p50 <= 300 ms and <= 0.5x the peer.
    label = "search p50 (ms): one attribute equality"
    fast_but_not_half = result("spanlake", searches_ms={"attribute": 200.0})
    cells = line(
        report.markdown(run_of(fast_but_not_half, result("peer", searches_ms={"attribute": 300.0}))), label
    )
    assert cells[1:4] == ["200.0", "300.0", "0.67"]
    assert cells[4:] == ["<= 300 and <= 0.5x peer", "FAIL"]
    half_but_slow = result("spanlake", searches_ms={"attribute": 400.0})
    cells = line(
        report.markdown(run_of(half_but_slow, result("peer", searches_ms={"attribute": 900.0}))), label
    )
    assert cells[5] == "FAIL"
    both = report.markdown(run_of(fast_but_not_half, result("peer", searches_ms={"attribute": 500.0})))
    assert line(both, label)[5] == "pass"


def test_issue_11_ratio_bars_against_the_peer():
    ours = result(
        "spanlake", storage_bytes=30_000, ingest_cpu_s=1.3, by_id_ms={"hit_p50": 1.3, "hit_p99": 1.0}
    )
    peer = result("peer", storage_bytes=50_000, ingest_cpu_s=1.0, by_id_ms={"hit_p50": 10.0, "hit_p99": 10.0})
    text = report.markdown(run_of(ours, peer))
    assert line(text, "storage: bytes per span")[4:] == ["<= 0.6x peer", "pass"]  # 0.60x
    assert line(text, "ingest: server CPU-s per million spans")[4:] == ["<= 1.3x peer", "pass"]
    assert line(text, "trace by ID, no time range: hit p50")[4:] == ["<= 0.12x peer", "FAIL"]  # 0.13x
    assert line(text, "trace by ID, no time range: hit p99")[4:] == ["<= 0.12x peer", "pass"]


def test_a_bar_against_the_peer_is_not_passed_without_the_peer():
    ours = result("spanlake", searches_ms={"percentiles": 1.0, "service_operation": 100.0})
    text = report.markdown(run_of(ours, None))
    assert line(text, "search p50 (ms): p50/p99")[4:] == ["<= peer", "no peer value"]
    assert line(text, "search p50 (ms): service + operation")[4:] == ["<= 300 and <= peer", "no peer value"]


def test_rss_during_searches_is_held_to_one_gib():
    over = result("spanlake", search_peak_rss=1100 << 20, ingest_peak_rss=900 << 20)
    text = report.markdown(run_of(over, None))
    assert line(text, "peak server RSS during searches")[4:] == ["<= 1,024", "FAIL"]
    assert line(text, "peak server RSS during ingest")[4:] == ["<= 1,024", "pass"]


def test_missing_numbers_say_not_measured_instead_of_passing():
    cells = line(report.markdown(run_of(result("spanlake"), None)), "trace by ID, no time range: hit p50")
    assert cells[1] == cells[2] == "not measured"
    assert cells[5] == "not measured"


def test_answers_are_checked_against_the_manifest_counts_capped_at_the_limit():
    ours = result("spanlake", searches_found={"service_operation": 20, "attribute": 5}, by_id_found=100)
    text = report.markdown(run_of(ours, None))
    assert line(text, "service + operation")[1:] == ["20", "-", "20"]
    assert line(text, "one attribute equality")[1:] == ["5", "-", "5"]
    assert line(text, "existing trace IDs")[1:] == ["100", "-", "100"]


def test_ingest_rate_is_spans_per_server_cpu_second():
    ours = result("spanlake", ingest_cpu_s=0.01, ingest_wall_s=0.02)
    text = report.markdown(run_of(ours, None))
    assert line(text, "ingest: spans per server CPU-second")[1] == "100,000"
    assert line(text, "ingest: server CPU-s per million spans")[1] == "10.00"


def test_chart_loads_the_installed_plotly_js_from_beside_it(tmp_path):
    ours = result("spanlake", by_id_ms={"hit_p50": 5.0}, searches_ms={"attribute": 100.0})
    report.chart(run_of(ours, result("peer", by_id_ms={"hit_p50": 50.0})), tmp_path / "run.html")
    text = (tmp_path / "run.html").read_text()
    assert 'src="plotly.min.js"' in text and "cdn.plot.ly" not in text
    assert (tmp_path / "plotly.min.js").stat().st_size > 1_000_000


def test_plotly_js_for_committed_charts_comes_from_the_installed_package(tmp_path: Path) -> None:
    from plotly.offline import get_plotlyjs

    report.write_plotly_js(tmp_path)
    assert (tmp_path / "plotly.min.js").read_text(encoding="utf-8") == get_plotlyjs()
