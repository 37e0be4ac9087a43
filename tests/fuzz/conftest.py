"""Fuzzing with hypothesis: a bounded number of cases in the default run, many more with -m fuzz.

Every test here counts the cases it ran; the session ends with one line, ``fuzz: N cases run, M
failing tests``, which is where the figures in docs/operations.md come from.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

BOUNDED_CASES = 60
LONG_CASES = 2000
_ran = {"cases": 0}

_COMMON = {"deadline": None, "database": None, "derandomize": False,
           "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.function_scoped_fixture]}
settings.register_profile("bounded", max_examples=BOUNDED_CASES, **_COMMON)  # type: ignore[arg-type]
settings.register_profile("long", max_examples=LONG_CASES, **_COMMON)  # type: ignore[arg-type]


def pytest_configure(config: pytest.Config) -> None:
    markexpr = str(config.getoption("markexpr", "") or "")
    settings.load_profile("long" if "fuzz" in markexpr and "not fuzz" not in markexpr else "bounded")


def count_case() -> None:
    _ran["cases"] += 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _ran["cases"]:
        failed = [r for r in terminalreporter.stats.get("failed", []) if "tests/fuzz/" in r.nodeid]
        terminalreporter.write_line(f"fuzz: {_ran['cases']} cases run, {len(failed)} failing tests")
