"""Waiting for what a store promises to show "within about a second"."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(check: Callable[[], T], timeout: float) -> T:
    """``check()``'s result once it stops failing an assertion; re-raises after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


def until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``predicate`` until it holds; fail naming ``what`` after ``timeout`` seconds."""

    def holds() -> None:
        assert predicate(), f"still not true after {timeout}s: {what}"

    eventually(holds, timeout)
