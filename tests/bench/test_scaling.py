from __future__ import annotations

from pathlib import Path

from bench import scaling, scaling_report


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
