"""Writers for transport tests: one that keeps what it is given, one that is always overloaded."""

from __future__ import annotations

import threading

import pyarrow as pa

from spanlake.storage.api import StoreOverloaded


class ListWriter:
    def __init__(self) -> None:
        self.tables: list[pa.Table] = []
        self.written = threading.Event()

    def write(self, spans: pa.Table) -> None:
        self.tables.append(spans)
        self.written.set()

    def rows(self) -> list[dict[str, object]]:
        return [row for t in self.tables for row in t.to_pylist()]


class OverloadedWriter:
    def write(self, spans: pa.Table) -> None:
        raise StoreOverloaded("buffer full")
