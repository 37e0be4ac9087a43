"""One process per WAL directory, and a writer ID that no other WAL directory has.

Two servers on one data directory used to share its writer ID: their segment names collided and
each overwrote the other's acknowledged spans, silently. Now a writer holds an exclusive ``flock``
on ``<wal dir>/lock`` for as long as it runs; a second process is refused at start with the
directory's name. The kernel drops the lock when the holder dies, even by ``kill -9``, so a restart
never has to clean anything up.

The writer ID names every segment its WAL flushes, in a store that many collectors may share. It
is made once and kept beside the WAL: 16 hex digits of the creation time in microseconds and 8 of
a random number, so two IDs collide only if two WAL directories are created in the same
microsecond and draw the same 32 random bits.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import time
from pathlib import Path

from spanlake.storage.location import fsync_path


class WalDirectoryInUse(Exception):
    """Another process holds this WAL directory."""


class WalDirectoryLock:
    def __init__(self, wal_dir: Path) -> None:
        wal_dir.mkdir(parents=True, exist_ok=True)
        self.path = wal_dir / "lock"
        self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            self._fd = None
            holder = self.path.read_text().strip() or "another process"
            raise WalDirectoryInUse(
                f"the WAL directory {wal_dir.absolute()} is in use by {holder}; give each spanlake "
                "process its own --data-dir (or --wal-dir)") from None
        os.ftruncate(self._fd, 0)
        os.write(self._fd, f"process {os.getpid()}".encode())

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def writer_id(wal_dir: Path) -> str:
    """This WAL directory's writer ID: made once (under the lock), kept beside the WAL."""
    path = wal_dir / "writer-id"
    if not path.exists():
        new = f"{time.time_ns() // 1000:016x}{secrets.token_hex(4)}"
        tmp = wal_dir / ".writer-id.tmp"
        tmp.write_text(new)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_path(wal_dir)
    return path.read_text().strip()
