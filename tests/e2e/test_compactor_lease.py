"""The compactor lease between real processes on SeaweedFS: exactly one compacts, another takes
over once the holder is killed and its lease has expired."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import httpx

from spanlake.storage.catalog import Catalog
from spanlake.storage.location import open_location
from spanlake.storage.segments import HOUR_NS
from spanlake.storage.store import SegmentStore, StoreConfig
from tests.e2e.support import eventually
from tests.seaweedfs import SeaweedFS
from tests.server import SpanlakeProcess
from tests.storage.test_store import _spans

LEASE_S = 3.0


def _write_flushes(directory: Path, bucket: str, hours_ago: int, flushes: int) -> int:
    """Small segments of a settled hour, written straight into the bucket; returns the span count."""
    store = SegmentStore(directory, StoreConfig(flush_interval_s=3600),
                         storage=open_location(f"s3://{bucket}"))
    total = 0
    for _ in range(flushes):
        spans = _spans(5, 4, start_ns=time.time_ns() - hours_ago * HOUR_NS)
        store.write(spans)
        store.flush()
        total += spans.num_rows
    store.close()
    return total


def _compactor(directory: Path, store: SeaweedFS, bucket: str) -> SpanlakeProcess:
    return SpanlakeProcess(directory, env=store.env, extra_args=[
        "--storage", f"s3://{bucket}", "--roles", "compactor", "--compact-interval", "0.3",
        "--compactor-lease", str(LEASE_S)])


def _holder(node: SpanlakeProcess) -> str | None:
    found = re.findall(r"compactor lease acquired by (\S+)", node.log())
    return found[-1] if found else None


def _merged_by(bucket: str) -> list[str]:
    """Who wrote each merged segment in the bucket."""
    catalog = Catalog(open_location(f"s3://{bucket}"))
    return [s.meta["compacted_by"] for s in catalog.segments() if "compacted_by" in s.meta]


def test_one_compactor_at_a_time_and_takeover_after_the_lease_expires(
        tmp_path: Path, seaweedfs: SeaweedFS, bucket: str) -> None:
    written = _write_flushes(tmp_path / "w", bucket, hours_ago=5, flushes=3)
    query = SpanlakeProcess(tmp_path / "q", env=seaweedfs.env, extra_args=[
        "--storage", f"s3://{bucket}", "--roles", "query", "--refresh-interval", "0.2"]).start()
    searches = _Searches(query, written)
    nodes = [_compactor(tmp_path / f"k{i}", seaweedfs, bucket).start() for i in range(2)]
    try:
        holder = eventually(lambda: _merged_by(bucket)[0], timeout=30)
        time.sleep(2 * LEASE_S)  # both keep competing: still only one holds the lease
        answers = searches.stop()
        assert answers > 5 and searches.wrong == []  # searches during compaction: complete, none twice
        holders = [_holder(n) for n in nodes]
        assert holders.count(None) == 1 and holder in holders
        (first,) = [n for n in nodes if _holder(n) == holder]
        (second,) = [n for n in nodes if n is not first]

        first.kill9()
        killed_at = time.monotonic()
        written += _write_flushes(tmp_path / "w", bucket, hours_ago=7, flushes=3)
        eventually(lambda: _holder(second) is not None, timeout=30)
        assert time.monotonic() - killed_at < 3 * LEASE_S  # the lease time, plus a renewal period
        merged = eventually(lambda: _two_holders(bucket), timeout=30)
        assert merged == {holder, _holder(second)}
    finally:
        searches.stop()
        for n in [*nodes, query]:
            n.stop()
    store = SegmentStore(tmp_path / "r", writable=False, storage=open_location(f"s3://{bucket}"))
    snapshot = store.snapshot()
    assert sum(s.num_spans for s in snapshot.segments) == written  # nothing lost or doubled
    assert all("compacted_by" in s.meta for s in snapshot.segments)


class _Searches:
    """Searches a query node in a loop (SQL and the Jaeger API), recording any incomplete answer."""

    def __init__(self, node: SpanlakeProcess, spans: int) -> None:
        self.node, self.spans, self.wrong, self.answers = node, spans, list[str](), 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)
        self._thread.start()

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.answers

    def _run(self) -> None:
        now_us = time.time_ns() // 1000
        params = {"service": "checkout", "start": str(now_us - 24 * 3600 * 10**6), "end": str(now_us),
                  "limit": "1000"}
        with httpx.Client(base_url=self.node.query_url, timeout=30) as client:
            while not self._stop.is_set():
                rows = client.post("/api/sql", content="SELECT count(*), count(DISTINCT span_id) FROM spans")
                if rows.json()["rows"] != [[self.spans, self.spans]]:
                    self.wrong.append(f"SQL: {rows.text}")
                traces = client.get("/api/traces", params=params).json()["data"]
                found = sum(len(t["spans"]) for t in traces)
                if found != self.spans:
                    self.wrong.append(f"Jaeger search: {found} spans in {len(traces)} traces")
                self.answers += 1


def _two_holders(bucket: str) -> set[str]:
    holders = set(_merged_by(bucket))
    assert len(holders) == 2
    return holders
