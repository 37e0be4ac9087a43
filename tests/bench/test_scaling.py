from __future__ import annotations

from pathlib import Path

from bench import measure, scaling, scaling_report


def test_a_size_that_does_not_fit_on_disk_is_skipped_and_says_so(tmp_path: Path):
    point = scaling.measure_size(10**15, ours=True, peer=True, seed=1, out=tmp_path)
    assert point.spanlake is None and point.peer is None
    assert point.skipped.startswith("not run:") and "GiB free" in point.skipped
    assert list(tmp_path.iterdir()) == []  # nothing generated
    run = scaling.Scaling(
        command="c", started="now", machine={}, sizes=[10**15], peer_sizes=[], points=[point]
    )
    text = scaling_report.markdown(run)
    assert f"- 1,000,000,000M: {point.skipped}" in text
    assert "| restart to ready (s): start `spanlake serve`, first trace by ID | not measured |" in text


def run_of(sizes: list[int], cpu_per_million: float, command: str) -> scaling.Scaling:
    points = [scaling.Point(spans=s, spanlake=measure.Result("spanlake", "v", spans=s,
                                                             ingest_cpu_s=cpu_per_million * s / 1e6))
              for s in sizes]
    return scaling.Scaling(command=command, started="t", machine={"cores": "2"}, sizes=sizes,
                           peer_sizes=[], points=points, seconds=10.0)


def test_runs_of_different_sizes_merge_into_one_table_through_their_json(tmp_path: Path):
    scaling.write(run_of([1_000_000, 10_000_000], 20.0, "first"), tmp_path / "a", "a")
    scaling.write(run_of([100_000_000], 30.0, "second"), tmp_path / "b", "b")
    merged = scaling.merge([scaling.load(tmp_path / "a" / "a.json"), scaling.load(tmp_path / "b" / "b.json")])
    assert [p.spans for p in merged.points] == [1_000_000, 10_000_000, 100_000_000]
    assert merged.complete and merged.seconds == 20.0
    assert merged.command == "first ; then second"
    text = scaling_report.markdown(merged)
    assert "| ingest: server CPU-s per million spans | 20.00 | 20.00 | 30.00 | - | - |" in text
