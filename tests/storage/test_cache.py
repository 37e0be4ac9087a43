"""The disk cache of a remote store's objects: whole files, downloaded once, least recently used out."""

from __future__ import annotations

import os
from pathlib import Path

from spanlake.storage.cache import DiskCache


def _writer(data: bytes, calls: list[str]):  # type: ignore[no-untyped-def]
    def download(dest: Path) -> None:
        calls.append(dest.name)
        dest.write_bytes(data)
    return download


def test_a_file_is_downloaded_once_and_then_served_from_disk(tmp_path: Path) -> None:
    cache, calls = DiskCache(tmp_path, max_bytes=1000), []
    first = cache.file("bucket/a.parquet", _writer(b"x" * 100, calls))
    again = cache.file("bucket/a.parquet", _writer(b"y" * 100, calls))
    assert first == again and first is not None and first.read_bytes() == b"x" * 100
    assert len(calls) == 1


def test_past_max_bytes_the_least_recently_used_files_go_first(tmp_path: Path) -> None:
    cache, calls = DiskCache(tmp_path, max_bytes=250), []
    a = cache.file("a", _writer(b"a" * 100, calls))
    b = cache.file("b", _writer(b"b" * 100, calls))
    assert a is not None and b is not None
    os.utime(b, (1, 1))  # b used long ago, a just now
    cache.file("a", _writer(b"a" * 100, calls))
    c = cache.file("c", _writer(b"c" * 100, calls))
    assert c is not None and a.exists() and c.exists() and not b.exists()
    assert sum(f.stat().st_size for f in tmp_path.iterdir()) <= 250


def test_without_a_byte_budget_no_file_is_cached(tmp_path: Path) -> None:
    calls: list[str] = []
    assert DiskCache(tmp_path).file("a", _writer(b"a", calls)) is None
    assert calls == [] and list(tmp_path.iterdir()) == []


def test_a_failed_download_leaves_nothing_behind(tmp_path: Path) -> None:
    cache = DiskCache(tmp_path, max_bytes=1000)

    def broken(dest: Path) -> None:
        dest.write_bytes(b"half")
        raise OSError("connection reset")

    try:
        cache.file("a", broken)
    except OSError:
        pass
    assert list(tmp_path.iterdir()) == []


def test_without_a_download_only_a_cached_file_is_returned(tmp_path: Path) -> None:
    cache, calls = DiskCache(tmp_path, max_bytes=1000), []
    assert cache.file("a", None) is None and list(tmp_path.iterdir()) == []
    cached = cache.file("a", _writer(b"a", calls))
    assert cache.file("a", None) == cached


def test_a_cached_file_is_served_while_another_downloads(tmp_path: Path) -> None:
    import threading

    cache, calls = DiskCache(tmp_path, max_bytes=1000), []
    cached = cache.file("a", _writer(b"a", calls))
    started, release = threading.Event(), threading.Event()

    def slow(dest: Path) -> None:
        started.set()
        release.wait(10)
        dest.write_bytes(b"b")

    downloading = threading.Thread(target=cache.file, args=("b", slow))
    downloading.start()
    assert started.wait(10)
    try:
        got: list[Path | None] = []
        hit = threading.Thread(target=lambda: got.append(cache.file("a", None)))
        hit.start()
        hit.join(2)
        assert got == [cached]  # served at once, not after b's download
    finally:
        release.set()
        downloading.join()
    assert cache.file("b", None) is not None
