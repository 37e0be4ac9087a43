"""The write-ahead log: what makes a write durable before it reaches a Parquet segment.

A WAL is a directory of numbered files (``000000000042.wal``). Each record is
``[magic "SLW2"][u32 length][u32 crc32 of the payload][u32 crc32 of the 12 bytes before]`` followed
by an Arrow IPC stream of one span batch. A write appends one record and fsyncs before it returns, so
an acknowledged batch survives ``kill -9`` and power loss.

Failure handling (issue 14: a disk that filled mid-append used to leave a torn record, acks written
after it were then truncated away by recovery):

- A failed append is rolled back: the file is truncated to the end of the last good record; if even
  that fails, the log rolls to a new file, so nothing acknowledged later sits behind the torn bytes.
  The caller gets ``WalWriteError`` (answered as a retryable error) and nothing of the record counts.
- Recovery tells a torn tail from a corrupt middle with the two checksums and the magic: bad bytes
  with no valid record after them are a torn, never-acknowledged tail and are truncated; bad bytes
  followed by valid records are a corrupt middle: reported (logged as an error and copied to a
  ``.corrupt`` file beside the log), skipped, and every valid record after them is kept.

Files written before this format (``[u32 length][u32 crc32]`` records, no magic) are still read.
The store rotates to a new file at every flush, so a flush covers whole files and deleting the files
it covered is all the cleanup there is.
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

import pyarrow as pa

from spanlake.storage.segments import fsync_path

log = logging.getLogger(__name__)

MAGIC = b"SLW2"
_HEADER = struct.Struct("<4sIII")  # magic, payload length, payload crc32, header crc32
_LEGACY_HEADER = struct.Struct("<II")
_SUFFIX = ".wal"


class WalWriteError(OSError):
    """An append did not reach the log (disk full, I/O error). It was rolled back: retry later."""


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


def encode_record(payload: bytes) -> bytes:
    head = struct.pack("<4sII", MAGIC, len(payload), zlib.crc32(payload))
    return head + struct.pack("<I", zlib.crc32(head)) + payload


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
        self._fd = self._open(self._seq)
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
        """Append one record, not yet durable; returns its end position for ``sync``.

        Raises ``WalWriteError`` after rolling the failed record back.
        """
        record = encode_record(payload)
        with self._lock:
            try:
                if self._fd < 0:  # an earlier roll could not open its file: try again now
                    self._fd = self._open(self._seq)
                _write_all(self._fd, record)
            except OSError as exc:
                self._roll_back()
                raise WalWriteError(exc.errno, f"WAL append failed ({exc.strerror}); rolled back") from exc
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
                fd = self._fd
            started = time.perf_counter()
            try:
                os.fsync(fd)
            except OSError as exc:
                # The kernel may have dropped the dirty pages: nothing since the last good fsync
                # counts as durable. Roll to a new file so later records do not share its fate.
                with self._lock:
                    self._roll_to_new_file()
                raise WalWriteError(exc.errno, f"WAL fsync failed ({exc.strerror})") from exc
            self.on_fsync(time.perf_counter() - started)
            self._synced = target

    def rotate(self) -> int:
        """Start a new file; returns the sequence number of the file just closed (and fsynced)."""
        with self._sync_lock, self._lock:
            closed = self._seq
            if self._fd >= 0:
                os.fsync(self._fd)
                os.close(self._fd)
            self._next_file()
            return closed

    def delete_through(self, seq: int) -> None:
        """Delete every file with a sequence number <= ``seq`` (their spans are in segments)."""
        for s in self.sequences():
            if s <= seq and s != self._seq:
                self.path(s).unlink(missing_ok=True)
        fsync_path(self.directory)

    def close(self) -> None:
        with self._sync_lock, self._lock:
            if self._fd < 0:
                return
            try:
                os.fsync(self._fd)
            finally:
                os.close(self._fd)

    def path(self, seq: int) -> Path:
        return self.directory / f"{seq:012d}{_SUFFIX}"

    def _roll_back(self) -> None:
        """Cut a failed append off the file, or leave the file behind if that fails too."""
        try:
            os.ftruncate(self._fd, self._offset)
            os.lseek(self._fd, self._offset, os.SEEK_SET)
        except OSError:
            log.exception("WAL: cannot truncate %s after a failed append; rolling to a new file",
                          self.path(self._seq))
            self._roll_to_new_file()

    def _roll_to_new_file(self) -> None:
        if self._fd >= 0:
            try:
                os.close(self._fd)
            except OSError:
                pass
        self._next_file()

    def _next_file(self) -> None:
        self._seq += 1
        self._offset = 0
        try:
            self._fd = self._open(self._seq)
        except OSError:
            log.exception("WAL: cannot open %s yet; the next append tries again", self.path(self._seq))
            self._fd = -1
        self._synced = (self._seq, 0)

    def _open(self, seq: int) -> int:
        fd = os.open(self.path(seq), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        fsync_path(self.directory)
        return fd


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def read_records(path: Path) -> Iterator[bytes]:
    """Every intact record of one WAL file.

    A torn tail (a crash or failed write mid-append: never acknowledged) is truncated. A corrupt
    record with valid records after it is reported, saved beside the file and skipped.
    """
    data = path.read_bytes()
    if data and not data.startswith(MAGIC):
        yield from _read_legacy(path, data)
        return
    offset = 0
    while offset < len(data):
        length = _valid_record_at(data, offset)
        if length is not None:
            start = offset + _HEADER.size
            yield data[start:start + length]
            offset = start + length
            continue
        resume = _next_valid_record(data, offset + 1)
        if resume is None:
            _truncate_torn_tail(path, offset, len(data) - offset)
            return
        _report_corruption(path, data, offset, resume)
        offset = resume


def _valid_record_at(data: bytes, offset: int) -> int | None:
    """The payload length of a whole, checksum-valid record starting at ``offset``, else None."""
    if offset + _HEADER.size > len(data):
        return None
    magic, length, crc, head_crc = _HEADER.unpack_from(data, offset)
    if magic != MAGIC or zlib.crc32(data[offset:offset + 12]) != head_crc:
        return None
    start = offset + _HEADER.size
    if start + length > len(data) or zlib.crc32(data[start:start + length]) != crc:
        return None
    return int(length)


def _next_valid_record(data: bytes, offset: int) -> int | None:
    while (found := data.find(MAGIC, offset)) != -1:
        if _valid_record_at(data, found) is not None:
            return found
        offset = found + 1
    return None


def _truncate_torn_tail(path: Path, offset: int, size: int) -> None:
    log.warning("WAL %s: dropping %d bytes of a torn, never-acknowledged record at offset %d",
                path, size, offset)
    with open(path, "r+b") as f:
        f.truncate(offset)
        os.fsync(f.fileno())


def _report_corruption(path: Path, data: bytes, start: int, end: int) -> None:
    saved = path.with_name(f"{path.name}.corrupt-{start}")
    try:
        saved.write_bytes(data[start:end])
    except OSError:
        saved = Path("(not saved: write failed)")
    log.error("WAL %s: %d corrupt bytes at offset %d..%d skipped (saved to %s); the records after "
              "them are kept", path, end - start, start, end, saved)


def _read_legacy(path: Path, data: bytes) -> Iterator[bytes]:
    """Records of the first WAL format: ``[u32 length][u32 crc32]``, stop at the first bad one."""
    offset = 0
    while offset + _LEGACY_HEADER.size <= len(data):
        length, crc = _LEGACY_HEADER.unpack_from(data, offset)
        start, end = offset + _LEGACY_HEADER.size, offset + _LEGACY_HEADER.size + length
        if end > len(data) or zlib.crc32(data[start:end]) != crc:
            break
        yield data[start:end]
        offset = end
    if offset != len(data):
        _truncate_torn_tail(path, offset, len(data) - offset)
