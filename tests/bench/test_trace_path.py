"""bench.trace_path reads a stored trace back through the query path and times every stage."""

from __future__ import annotations

from bench.trace_path import STAGES, measure


def test_every_stage_is_timed_for_a_stored_trace() -> None:
    result = measure(25, repeat=2)
    assert set(result) == set(STAGES)
    assert all(ms > 0 for ms in result.values())
