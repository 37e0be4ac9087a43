"""The WAL under write errors and corruption: a failed append is rolled back, a torn tail is cut,
a corrupt middle is reported and skipped, and no acknowledged record is ever dropped."""

from __future__ import annotations

import errno
import logging
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from spanlake.storage import wal as wal_module
from spanlake.storage.api import StoreUnavailable
from spanlake.storage.rows import spans_table
from spanlake.storage.store import SegmentStore, StoreConfig
from spanlake.storage.wal import WalWriteError, WriteAheadLog, encode_record, read_records
from tests.storage.spans import span
from tests.tmpfs import fill, small_tmpfs


def _records(n: int, size: int = 100) -> list[bytes]:
    return [bytes([i]) * size for i in range(n)]


def _log_with(tmp_path: Path, payloads: list[bytes]) -> Path:
    log = WriteAheadLog(tmp_path / "wal", first_seq=1)
    for p in payloads:
        log.append(p)
    log.close()
    return log.path(1)


def test_torn_tail_is_truncated_and_earlier_records_kept(tmp_path: Path) -> None:
    path = _log_with(tmp_path, _records(3))
    good_size = path.stat().st_size
    with open(path, "ab") as f:
        f.write(encode_record(b"x" * 100)[:50])  # a crash halfway through an append
    assert list(read_records(path)) == _records(3)
    assert path.stat().st_size == good_size


@pytest.mark.parametrize("where", ["payload", "length"])
def test_corrupt_middle_is_reported_and_skipped_not_truncated(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, where: str) -> None:
    payloads = _records(4)
    path = _log_with(tmp_path, payloads)
    data = bytearray(path.read_bytes())
    record = len(encode_record(payloads[0]))
    # Flip one byte of the second record: in its payload, or in its length field.
    data[record + (20 if where == "payload" else 5)] ^= 0xFF
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.ERROR, logger="spanlake.storage.wal"):
        assert list(read_records(path)) == [payloads[0], *payloads[2:]]
    assert "corrupt bytes" in caplog.text
    assert path.stat().st_size == len(data)  # nothing cut off
    (saved,) = path.parent.glob("*.corrupt-*")
    assert saved.stat().st_size == record


def test_failed_append_is_rolled_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = WriteAheadLog(tmp_path / "wal", first_seq=1)
    log.append(b"a" * 100)
    size = log.path(1).stat().st_size
    real_write = os.write

    def half_then_enospc(fd: int, data: bytes) -> int:
        real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(wal_module.os, "write", half_then_enospc)  # the OS-call boundary
    with pytest.raises(WalWriteError):
        log.append(b"b" * 100)
    assert log.path(1).stat().st_size == size  # the torn half is gone
    monkeypatch.undo()
    log.append(b"c" * 100)
    log.close()
    assert list(read_records(log.path(1))) == [b"a" * 100, b"c" * 100]


def test_append_rolls_to_a_new_file_when_rollback_fails(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    log = WriteAheadLog(tmp_path / "wal", first_seq=1)
    log.append(b"a" * 100)
    real_write = os.write

    def half_then_eio(fd: int, data: bytes) -> int:
        real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.EIO, "Input/output error")

    def no_truncate(fd: int, size: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(wal_module.os, "write", half_then_eio)
    monkeypatch.setattr(wal_module.os, "ftruncate", no_truncate)
    with pytest.raises(WalWriteError):
        log.append(b"b" * 100)
    monkeypatch.undo()
    assert log.append(b"c" * 100) == 2  # later records go to a new file, not behind the torn bytes
    log.close()
    assert [r for s in log.sequences() for r in read_records(log.path(s))] == [b"a" * 100, b"c" * 100]


def _batch(n: int) -> pa.Table:
    return spans_table([span(n, i + 1, "svc") for i in range(50)])


def fill_write_and_crash(data_dir: str) -> None:
    """Run in a child process: write until the (nearly full) disk refuses, free space, write five
    more batches, print the number of acknowledged spans and die without closing the store."""
    disk = Path(data_dir).parent
    store = SegmentStore(Path(data_dir), StoreConfig(flush_interval_s=3600))
    acked, n = 0, 0
    ballast = fill(disk, leave_bytes=256 * 1024)
    try:
        while True:  # until the disk is full and an append fails halfway
            n += 1
            store.write(_batch(n))
            acked += 50
    except StoreUnavailable:
        pass
    ballast.unlink()
    for _ in range(5):
        n += 1
        store.write(_batch(n))
        acked += 50
    print(acked, flush=True)
    os._exit(0)  # a crash: no close(), no flush


def test_acks_after_a_full_disk_survive_a_crash(tmp_path: Path) -> None:
    """Issue 14, case 1: fill a real tmpfs until a write fails, free space, write more (acknowledged),
    crash, recover: every acknowledged span is found."""
    with small_tmpfs(tmp_path / "disk", 16) as disk:
        child = subprocess.run(
            [sys.executable, "-c", "import sys; from tests.storage.test_wal import fill_write_and_crash; "
                                   "fill_write_and_crash(sys.argv[1])", str(disk / "data")],
            capture_output=True, text=True, check=True, cwd=Path(__file__).parents[2])
        acked = int(child.stdout.split()[-1])
        assert acked > 250
        recovered = SegmentStore(disk / "data", StoreConfig(flush_interval_s=3600))
        try:
            assert recovered.snapshot().tail.num_rows + sum(
                s.meta["span_count"] for s in recovered.catalog.segments()) == acked
        finally:
            recovered.close()
