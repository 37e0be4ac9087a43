"""Two servers on one data directory: the second refuses to start instead of losing spans."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.server import SpanlakeProcess


def test_a_second_server_on_the_same_wal_directory_refuses_naming_it(tmp_path: Path) -> None:
    first = SpanlakeProcess(tmp_path / "data").start()
    try:
        second = SpanlakeProcess(tmp_path / "data")  # same directory, other ports
        with pytest.raises(RuntimeError, match="exited with 2") as failed:
            second.start()
        message = f"spanlake: error: the WAL directory {(tmp_path / 'data' / 'wal').absolute()} is in use"
        assert message in str(failed.value)
        assert "Traceback" not in str(failed.value)  # one clear line, not a stack trace
        assert first.alive()
    finally:
        first.stop()


def test_the_directory_is_free_again_once_the_first_server_stopped(tmp_path: Path) -> None:
    first = SpanlakeProcess(tmp_path / "data").start()
    first.kill9()  # even kill -9: the kernel releases the lock with the process
    again = SpanlakeProcess(tmp_path / "data").start()
    again.stop()
