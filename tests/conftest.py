"""Shared fixtures: a real running ``spanlake serve``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server import SpanlakeProcess


@pytest.fixture
def spanlake_server(tmp_path: Path) -> Iterator[SpanlakeProcess]:
    """A fresh server on an empty store, stopped (gracefully) after the test."""
    server = SpanlakeProcess(tmp_path / "data").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def shared_spanlake_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SpanlakeProcess]:
    """One server for a whole test module (tests must not assume an empty store)."""
    server = SpanlakeProcess(tmp_path_factory.mktemp("spanlake") / "data").start()
    yield server
    server.stop()
