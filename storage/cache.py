"""Objects of a remote store kept on local disk: sidecars, so a restarted query node starts warm,
and whole segment files, so searches read them at local-disk speed after their first use.

Everything cached is immutable under its name, so a cached copy never goes stale; entries of
segments no longer listed (compacted away, dropped by retention) are pruned at each listing, and
past ``max_bytes`` the least recently used entries go first. Losing the directory only costs the
requests to fetch them again.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path


class DiskCache:
    def __init__(self, directory: Path, max_bytes: int = 0) -> None:
        """``max_bytes``: whole segment files are cached too (``file``) up to about this many bytes
        in all; 0 keeps only sidecars."""
        self.directory = directory
        self.max_bytes = max_bytes
        self._locks: dict[str, threading.Lock] = {}  # per key: one download of it, however many want it
        self._guard = threading.Lock()  # the dict above, and eviction
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

    def file(self, key: str, download: Callable[[Path], None] | None) -> Path | None:
        """A local file holding ``key``'s object (``download`` writes it to the path it is given
        when it is not cached yet; without one, only a cached file is returned); None when files
        are not cached (``max_bytes`` 0)."""
        if not self.max_bytes:
            return None
        file = self._file(key)
        if self._touch(file):
            return file
        if download is None:
            return None
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:  # a hit on another key never waits for this download
            if self._touch(file):
                return file
            tmp = file.with_name(f".{file.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            try:
                download(tmp)
                os.replace(tmp, file)
            finally:
                tmp.unlink(missing_ok=True)
        with self._guard:
            self._evict(keep=file)
        return file

    @staticmethod
    def _touch(file: Path) -> bool:
        """Whether ``file`` is cached; if so it is marked recently used (evicted last)."""
        try:
            os.utime(file)
            return True
        except FileNotFoundError:
            return False

    def _evict(self, keep: Path) -> None:
        """Delete the least recently used entries until the cache fits ``max_bytes``. (A query
        that already opened an evicted file keeps reading it: the inode lives until it closes.)"""
        entries = [(e.stat().st_mtime, e.stat().st_size, e) for e in self.directory.iterdir()
                   if not e.name.startswith(".")]
        total = sum(size for _, size, _ in entries)
        for _, size, entry in sorted(entries, key=lambda e: e[0]):
            if total <= self.max_bytes:
                break
            if entry != keep:
                entry.unlink(missing_ok=True)
                total -= size

    def prune(self, live_keys: Iterable[str]) -> None:
        """Delete the entries of every key not in ``live_keys``."""
        keep = {self._file(k).name for k in live_keys}
        for entry in self.directory.iterdir():
            if entry.name not in keep and not entry.name.startswith("."):
                entry.unlink(missing_ok=True)

    def _file(self, key: str) -> Path:
        return self.directory / hashlib.sha256(key.encode()).hexdigest()[:40]
