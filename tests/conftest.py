"""Shared fixtures: a real running ``spanlake serve``; a real SeaweedFS S3 store."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.seaweedfs import SeaweedFS
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


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    """One SeaweedFS for the session (a few seconds to start); tests keep to their own ``bucket``."""
    store = SeaweedFS(tmp_path_factory.mktemp("seaweedfs")).start()
    yield store
    store.stop()


@pytest.fixture
def bucket(seaweedfs: SeaweedFS, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh ``BUCKET/PREFIX`` on the session's SeaweedFS, with the AWS variables pointing at it.

    One bucket with a prefix per test: SeaweedFS gives each bucket volumes of its own, and a test
    machine's disk runs out of them after a few buckets."""
    for key, value in seaweedfs.env.items():
        monkeypatch.setenv(key, value)
    return f"spanlake-tests/t-{secrets.token_hex(6)}"
