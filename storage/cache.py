"""Sidecars of a remote store kept on local disk, so a restarted query node starts warm.

Sidecars (``.tids``, ``.bloom``) are immutable under their name, so a cached copy never goes stale;
entries of segments no longer listed (compacted away, dropped by retention) are pruned at each
listing. Losing the directory only costs the requests to fetch them again.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from pathlib import Path


class DiskCache:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def get(self, key: str, fetch: Callable[[], bytes | None]) -> bytes | None:
        """The cached bytes of ``key``, else ``fetch()``'s (kept for next time unless None)."""
        file = self._file(key)
        try:
            return file.read_bytes()
        except FileNotFoundError:
            pass
        data = fetch()
        if data is not None:
            tmp = file.with_name(f".{file.name}.{os.getpid()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, file)  # whole or absent, for a concurrent reader
        return data

    def prune(self, live_keys: Iterable[str]) -> None:
        """Delete the entries of every key not in ``live_keys``."""
        keep = {self._file(k).name for k in live_keys}
        for entry in self.directory.iterdir():
            if entry.name not in keep and not entry.name.startswith("."):
                entry.unlink(missing_ok=True)

    def _file(self, key: str) -> Path:
        return self.directory / hashlib.sha256(key.encode()).hexdigest()[:40]
