"""The free-space reserve: ingest stops while the store's disk has less than this left.

The reserve is kept for what must still succeed on a nearly full disk: flushes (a segment is
written before the WAL files it replaces are deleted), compaction, the writer-id file, the logs.
Without it the WAL filled every freed byte within seconds and no flush could ever finish (issue 14).
The check is cheap (one ``statvfs``) and cached for a fraction of a second, so every write can ask.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

from spanlake.storage.api import StoreUnavailable

_CACHE_S = 0.25


class DiskReserve:
    """Refuses writes (``StoreUnavailable``) while ``paths`` have fewer than ``reserve_bytes`` free."""

    def __init__(self, paths: list[Path], reserve_bytes: int) -> None:
        self.paths = paths
        self.reserve_bytes = reserve_bytes
        self._lock = threading.Lock()
        self._checked_at = -1.0
        self._short: str | None = None
        self._free = 0

    def check(self, incoming_bytes: int = 0) -> None:
        """Raise ``StoreUnavailable`` if writing ``incoming_bytes`` more would eat into the reserve."""
        if self.reserve_bytes <= 0 and incoming_bytes == 0:
            return
        problem = self._problem(incoming_bytes)
        if problem:
            raise StoreUnavailable(problem, retry_after_s=5.0)

    def free_bytes(self) -> int:
        return min(_free(p) for p in self.paths)

    def _problem(self, incoming_bytes: int) -> str | None:
        now = time.monotonic()
        with self._lock:
            if now - self._checked_at >= _CACHE_S:
                self._checked_at = now
                free = self.free_bytes()
                self._short = None if free >= self.reserve_bytes else (
                    f"the store's disk has {free} bytes free, under the reserve of "
                    f"{self.reserve_bytes} bytes (--disk-reserve-bytes); ingest resumes by itself "
                    "once space is freed")
                self._free = free
            if self._short is None and incoming_bytes and self._free - incoming_bytes < self.reserve_bytes:
                return (f"writing {incoming_bytes} bytes would leave less than the reserve of "
                        f"{self.reserve_bytes} bytes free on the store's disk")
            return self._short


def _free(path: Path) -> int:
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return int(shutil.disk_usage(os.fspath(probe)).free)
