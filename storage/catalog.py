"""Which segments exist: a cached view of the committed segment files and their footers.

Discovery is by listing the store (a directory or a bucket prefix) at most every ``refresh_s``;
footers are read once per segment and kept, with the sidecars each ``Segment`` loads (on S3: the
trace-ID sidecars at discovery, side by side; optionally also kept on local disk, ``cache.py``).
A segment counts unless a compacted segment ``replaces`` it.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pyarrow as pa

from spanlake.storage.cache import DiskCache
from spanlake.storage.location import Location, StorageUnavailable
from spanlake.storage.segments import (
    SIDECARS,
    Segment,
    SegmentFormatError,
    list_segment_files,
    open_segment,
    sidecar_path,
)

log = logging.getLogger(__name__)

# How stale a listing may be for a process that did not write the segments itself (a query role
# beside separate collectors). The writing process invalidates on every commit.
DEFAULT_REFRESH_S = 1.0
_PARALLEL_READS = 8


@dataclass(frozen=True)
class Snapshot:
    """What one query sees: committed segments plus the unflushed tail, never a span twice."""

    segments: list[Segment]
    tail: pa.Table


class Catalog:
    def __init__(self, loc: Location, refresh_s: float = DEFAULT_REFRESH_S,
                 cache: DiskCache | None = None) -> None:
        self.loc = loc
        self.refresh_s = refresh_s
        self.cache = cache
        self._lock = threading.Lock()
        self._by_path: dict[str, Segment] = {}
        self._listed_at = 0.0
        self._current: list[Segment] = []
        self._unreadable: set[str] = set()  # reported once each, then left out

    def invalidate(self) -> None:
        self._listed_at = 0.0

    def segments(self) -> list[Segment]:
        """Committed segments, minus those a compacted segment has replaced."""
        with self._lock:
            if time.monotonic() - self._listed_at > self.refresh_s:
                self._current = self._relist()
                self._listed_at = time.monotonic()
            return self._current

    def last_wal_seq(self, writer: str) -> int:
        """The last WAL file of ``writer`` covered by a committed segment (-1 if none)."""
        seqs = [int(s.meta.get("wal_seq", {}).get(writer, -1)) for s in self.segments()]
        return max(seqs, default=-1)

    def _relist(self) -> list[Segment]:
        files = list_segment_files(self.loc)
        self._by_path = {p: s for p, s in self._by_path.items() if p in files}
        new = [(p, size) for p, size in files.items() if p not in self._by_path and p not in self._unreadable]
        if self.loc.is_local or len(new) < 2:
            opened = [self._open(p, size) for p, size in new]
        else:  # on S3 each footer (and trace-ID sidecar) is a round trip: do them side by side
            with ThreadPoolExecutor(max_workers=_PARALLEL_READS) as pool:
                opened = list(pool.map(lambda item: self._open(*item), new))
        for (p, _), seg in zip(new, opened, strict=True):
            if seg is not None:
                self._by_path[p] = seg
        if self.cache is not None:
            live = [*files, *(sidecar_path(p, x) for p in files for x in SIDECARS)]
            self.cache.prune(live)  # segment files and sidecars of listed segments stay
        replaced = {r for s in self._by_path.values() for r in s.meta.get("replaces", [])}
        return [s for p, s in sorted(self._by_path.items()) if self.loc.relative(p) not in replaced]

    def _open(self, path: str, size: int | None) -> Segment | None:
        try:
            seg = open_segment(self.loc, path, size, self.cache)
            if seg is not None and not self.loc.is_local:
                # Load the trace-ID sidecar now, not on the first lookup: a query node's first
                # trace by ID would otherwise wait for one request per segment.
                seg.trace_ids()
            return seg
        except FileNotFoundError:  # deleted by compaction or retention meanwhile
            return None
        except pa.ArrowInvalid:  # not Parquet, or an upload cut short: not a segment (yet)
            return None
        except SegmentFormatError as exc:  # e.g. written by a newer spanlake
            log.error("segment left out of every query: %s", exc)
            self._unreadable.add(path)
            return None
        except OSError as e:
            if self.loc.is_local:
                return None
            raise StorageUnavailable(f"cannot read {self.loc.uri} ({path}): {e}") from None


def flush_key(path: str) -> tuple[str, int] | None:
    """(writer, WAL position) of the flush that wrote a segment, from its name
    ``<writer>-<walseq>-<n>.parquet``; None for a compacted segment (``c<hex>``)."""
    parts = path.rsplit("/", 1)[-1].removesuffix(".parquet").rsplit("-", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return None
    return parts[0], int(parts[1])
