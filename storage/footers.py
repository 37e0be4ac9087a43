"""Which segments keep their parsed Parquet footer in memory: the most recently used, within a budget.

A parsed footer costs about 1 KiB per column chunk: 3.8 MiB for a 250k-span merged segment (61 row
groups x 64 leaf columns), against 0.5 MB on disk. Kept for every segment, footers made the server's
memory grow with the store (1.6 GiB of them at 100M spans). Parsing one again costs 2.5-5 ms
(``python -m bench.footers``), so a trace lookup keeps the footers of recently read segments and
parses the others when it needs them. The budget counts column chunks, which is what the memory
follows.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from typing import Protocol

import pyarrow.parquet as pq

# ~256 MiB of footers: every segment of a 10M-span store (43 segments, ~170k chunks), the most recent
# ~65 merged segments of a larger one.
FOOTER_BUDGET_CHUNKS = 256 * 1024


class HasFooter(Protocol):
    footer: pq.FileMetaData | None


def chunks_of(metadata: pq.FileMetaData) -> int:
    return int(metadata.num_row_groups) * int(metadata.num_columns)


class FooterBudget:
    """Least recently used segments lose their footer (``footer = None``) once the kept footers hold
    more than ``max_chunks`` column chunks. Segments are held weakly: one that no snapshot lists any
    more is freed with its footer and leaves the budget."""

    def __init__(self, max_chunks: int = FOOTER_BUDGET_CHUNKS) -> None:
        self.max_chunks = max_chunks
        self._lock = threading.RLock()  # a segment freed while evicting calls _forget
        self._kept: OrderedDict[int, tuple[weakref.ref[HasFooter], int]] = OrderedDict()
        self._chunks = 0

    @property
    def chunks(self) -> int:
        return self._chunks

    def keep(self, owner: HasFooter, metadata: pq.FileMetaData) -> None:
        """Give ``owner`` its footer and count it as the most recently used."""
        key, chunks = id(owner), chunks_of(metadata)
        with self._lock:
            owner.footer = metadata
            old = self._kept.pop(key, None)
            if old is not None:
                self._chunks -= old[1]
            self._kept[key] = (weakref.ref(owner, lambda _: self._forget(key)), chunks)
            self._chunks += chunks
            while self._chunks > self.max_chunks and len(self._kept) > 1:
                _, (ref, dropped) = self._kept.popitem(last=False)
                self._chunks -= dropped
                evicted = ref()
                if evicted is not None:
                    evicted.footer = None

    def _forget(self, key: int) -> None:
        with self._lock:
            gone = self._kept.pop(key, None)
            if gone is not None:
                self._chunks -= gone[1]


FOOTERS = FooterBudget()
