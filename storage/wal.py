"""The write-ahead log: what makes a write durable before it reaches a Parquet segment.

A WAL is a directory of numbered files (``000000000042.wal``). Each file is a sequence of records
``[u32 length][u32 crc32][Arrow IPC stream of one span batch]``. A write appends one record and
fsyncs before it returns, so an acknowledged batch survives ``kill -9`` and power loss. A crash in
the middle of an append leaves a torn last record; it was never acknowledged, and replay stops
there (and truncates it) instead of failing.

The store rotates to a new file at every flush, so a flush covers whole files and deleting the
files it covered is all the cleanup there is.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa

from spanlake.storage.segments import fsync_path

log = logging.getLogger(__name__)

_HEADER = struct.Struct("<II")
_SUFFIX = ".wal"


def _ignore(seconds: float) -> None:
    pass


def encode_batch(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    data: bytes = sink.getvalue().to_pybytes()
    return data


def decode_batch(payload: bytes) -> pa.Table:
    return pa.ipc.open_stream(payload).read_all()


class WriteAheadLog:
    """Append-only, fsynced, rotating log of span batches in one directory (one writer only)."""

    def __init__(self, directory: Path, first_seq: int) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        # Lock order: _sync_lock, then _lock. _lock guards the file and offsets; _sync_lock makes
        # one fsync at a time and keeps rotate from closing a file while it is being fsynced.
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._seq = max([first_seq, *(s + 1 for s in self.sequences())])
        self._file = self._open(self._seq)
        self._offset = 0
        self._synced = (self._seq, 0)
        self.on_fsync: Callable[[float], None] = _ignore  # seconds of each group-commit fsync

    @property
    def current_seq(self) -> int:
        return self._seq

    def sequences(self) -> list[int]:
        """Sequence numbers of the WAL files on disk, ascending."""
        return sorted(int(p.stem) for p in self.directory.glob(f"*{_SUFFIX}") if p.stem.isdigit())

    def append(self, payload: bytes) -> int:
        """Append one record durably; returns the sequence number of the file it went to."""
        position = self.write(payload)
        self.sync(position)
        return position[0]

    def write(self, payload: bytes) -> tuple[int, int]:
        """Append one record, not yet durable; returns its end position for ``sync``."""
        record = _HEADER.pack(len(payload), zlib.crc32(payload)) + payload
        with self._lock:
            self._file.write(record)
            self._file.flush()
            self._offset += len(record)
            return self._seq, self._offset

    def sync(self, position: tuple[int, int]) -> None:
        """Make the log durable up to ``position``.

        Group commit: the fsync runs outside ``_lock``, so other writers keep appending meanwhile,
        and one fsync covers every record written before it; writers it covered return at once.
        """
        with self._sync_lock:
            if position <= self._synced:
                return
            with self._lock:
                target = (self._seq, self._offset)
                fd = self._file.fileno()
            started = time.perf_counter()
            os.fsync(fd)
            self.on_fsync(time.perf_counter() - started)
            self._synced = target

    def rotate(self) -> int:
        """Start a new file; returns the sequence number of the file just closed (and fsynced)."""
        with self._sync_lock, self._lock:
            closed = self._seq
            os.fsync(self._file.fileno())
            self._file.close()
            self._seq += 1
            self._file = self._open(self._seq)
            self._offset = 0
            self._synced = (self._seq, 0)
            return closed

    def delete_through(self, seq: int) -> None:
        """Delete every file with a sequence number <= ``seq`` (their spans are in segments)."""
        for s in self.sequences():
            if s <= seq and s != self._seq:
                self.path(s).unlink(missing_ok=True)
        fsync_path(self.directory)

    def close(self) -> None:
        with self._sync_lock, self._lock:
            os.fsync(self._file.fileno())
            self._file.close()

    def path(self, seq: int) -> Path:
        return self.directory / f"{seq:012d}{_SUFFIX}"

    def _open(self, seq: int) -> BinaryIO:
        f = open(self.path(seq), "ab")
        fsync_path(self.directory)
        return f


def read_records(path: Path) -> Iterator[bytes]:
    """Every intact record of one WAL file; truncates a torn tail left by a crash mid-append."""
    data = path.read_bytes()
    offset = 0
    while offset + _HEADER.size <= len(data):
        length, crc = _HEADER.unpack_from(data, offset)
        start, end = offset + _HEADER.size, offset + _HEADER.size + length
        if end > len(data) or zlib.crc32(data[start:end]) != crc:
            break
        yield data[start:end]
        offset = end
    if offset != len(data):
        log.warning("WAL %s: dropping %d bytes of a torn, never-acknowledged record",
                    path, len(data) - offset)
        with open(path, "r+b") as f:
            f.truncate(offset)
            os.fsync(f.fileno())
