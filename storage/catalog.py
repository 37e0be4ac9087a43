"""Which segments exist: a cached view of the committed segment files and their footers."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from spanlake.storage.segments import Segment, SegmentFormatError, list_segment_paths, open_segment

log = logging.getLogger(__name__)

# How stale a listing may be for a process that did not write the segments itself (a query role
# beside separate collectors). The writing process invalidates on every commit.
_RELIST_AFTER_S = 1.0


@dataclass(frozen=True)
class Snapshot:
    """What one query sees: committed segments plus the unflushed tail, never a span twice."""

    segments: list[Segment]
    tail: pa.Table


class Catalog:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._by_path: dict[Path, Segment] = {}
        self._listed_at = 0.0
        self._current: list[Segment] = []
        self._unreadable: set[Path] = set()  # reported once each, then left out

    def invalidate(self) -> None:
        self._listed_at = 0.0

    def segments(self) -> list[Segment]:
        """Committed segments, minus those a compacted segment has replaced."""
        with self._lock:
            if time.monotonic() - self._listed_at > _RELIST_AFTER_S:
                self._current = self._relist()
                self._listed_at = time.monotonic()
            return self._current

    def last_wal_seq(self, writer: str) -> int:
        """The last WAL file of ``writer`` covered by a committed segment (-1 if none)."""
        seqs = [int(s.meta.get("wal_seq", {}).get(writer, -1)) for s in self.segments()]
        return max(seqs, default=-1)

    def _relist(self) -> list[Segment]:
        paths = list_segment_paths(self.root)
        live = set(paths)
        self._by_path = {p: s for p, s in self._by_path.items() if p in live}
        for p in paths:
            if p not in self._by_path and p not in self._unreadable:
                try:
                    seg = open_segment(p)
                except (OSError, pa.ArrowInvalid):  # deleted by compaction meanwhile, or foreign
                    continue
                except SegmentFormatError as exc:  # e.g. written by a newer spanlake
                    log.error("segment left out of every query: %s", exc)
                    self._unreadable.add(p)
                    continue
                if seg is not None:
                    self._by_path[p] = seg
        replaced = {r for s in self._by_path.values() for r in s.meta.get("replaces", [])}
        return [s for p, s in sorted(self._by_path.items())
                if str(p.relative_to(self.root)) not in replaced]
