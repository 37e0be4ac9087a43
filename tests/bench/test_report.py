from __future__ import annotations

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
    ours = result("spanlake", storage_bytes=35_000)  # 35 B/span: under 40, but not under 0.7 x 45
    peer = result("peer", storage_bytes=45_000)
    cells = line(report.markdown(run_of(ours, peer)), "storage: bytes per span")
    assert cells[1:4] == ["35.0", "45.0", "0.78"]
    assert cells[5] == "FAIL"
    cells = line(
        report.markdown(run_of(ours, result("peer", storage_bytes=60_000))), "storage: bytes per span"
    )
    assert cells[5] == "pass"


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
    cells = line(report.markdown(run_of(ours, None)), "ingest: spans per server CPU-second")
    assert cells[1] == "100,000" and cells[5] == "pass"
