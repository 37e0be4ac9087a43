"""The segment store: WAL + in-memory tail + immutable Parquet segments, one writer per process.

Write path: ``write`` appends the batch to the WAL (fsync) and to the in-memory tail, then returns:
the spans are durable and already visible (readers query the tail beside the segments). A
background thread flushes the tail into segments every ``flush_interval_s`` or when it reaches
``segment_max_spans``, then deletes the WAL files the flush covered.

Crash safety: segments are named ``<writer>-<last WAL seq>``, so a flush interrupted by a crash is
redone on start under the same names (overwriting whatever part of it was committed) from the WAL
files it covered, which are deleted only after the whole flush committed.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from spanlake.storage import compaction
from spanlake.storage.api import DependencyLink, Operation, StoreOverloaded, StoreUnavailable, TraceQuery
from spanlake.storage.catalog import Catalog, Snapshot
from spanlake.storage.diskspace import DiskReserve
from spanlake.storage.reader import Reader
from spanlake.storage.schema import SPAN_SCHEMA
from spanlake.storage.segments import (
    HOUR_NS,
    PendingSegment,
    delete_segment,
    partition_of,
    prepare_segment,
    remove_debris,
)
from spanlake.storage.wal import WalWriteError, WriteAheadLog, decode_batch, encode_batch, read_records

log = logging.getLogger(__name__)

_SMALL_BATCH = 1024
_SMALL_RUN_MERGE = 64
_RETRY_FLUSH_S = 5.0
# Failpoint for the crash tests: seconds to stall after each segment commit of a flush, so a test
# can kill -9 the process between the commits of one flush. Never set in production.
_PAUSE_AFTER_COMMIT_S = float(os.environ.get("SPANLAKE_TEST_FLUSH_PAUSE", "0"))


@dataclass(frozen=True)
class StoreConfig:
    flush_interval_s: float = 5.0
    # A buffered span costs ~850 bytes of Arrow memory, and a flush briefly holds about three copies
    # of what it writes: 100k spans per flush keeps the server near 1 GiB under sustained ingest
    # (500k measured 1.8 GiB peak RSS in bench/). Compaction merges the small segments later.
    segment_max_spans: int = 100_000
    # Unflushed spans beyond this are refused (StoreOverloaded) instead of growing memory.
    max_buffered_spans: int = 400_000
    wal_dir: Path | None = None  # default: <data>/wal
    # Writes are refused (StoreUnavailable) while the data or WAL disk has less than this free:
    # the room flushes and compaction need on a nearly full disk (storage/diskspace.py).
    disk_reserve_bytes: int = 0


class SegmentStore:
    """Implements ``SpanWriter`` and ``SpanReader`` over a data directory."""

    def __init__(self, data_dir: Path, config: StoreConfig = StoreConfig(), writable: bool = True) -> None:
        self.data_dir = Path(data_dir)
        self.config = config
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()  # guards the tail and WAL rotation together
        self._tail: list[pa.Table] = []
        self._tail_spans = 0
        self._small_run = 0  # how many small batches end the tail (see _append_to_tail)
        self._flushing: list[pa.Table] = []
        self._flushing_spans = 0
        self._flush_lock = threading.Lock()  # one flush at a time
        self._wake = threading.Event()
        self._closed = threading.Event()
        self.catalog = Catalog(self.data_dir)
        self.reader = Reader(self.snapshot)
        self._wal: WriteAheadLog | None = None
        self._flusher: threading.Thread | None = None
        self.disk = DiskReserve([self.data_dir, config.wal_dir or self.data_dir / "wal"],
                                config.disk_reserve_bytes)
        if writable:
            self._open_for_writing()

    # --- write path -------------------------------------------------------------------------
    def write(self, spans: pa.Table) -> None:
        if spans.num_rows == 0:
            return
        wal = self._require_wal()
        self.check_capacity(spans.num_rows)
        spans = spans.cast(SPAN_SCHEMA) if spans.schema != SPAN_SCHEMA else spans
        payload = encode_batch(spans)
        self.disk.check(len(payload))
        # Append and publish under one lock so a flush never rotates between them: every span in
        # the tail is in a WAL file that the next flush covers. The fsync comes after, outside the
        # lock, shared with concurrent writers (group commit); only then is the write acknowledged.
        # A failed append was rolled back by the WAL and is answered as retryable. (A failed fsync is
        # answered the same way, but its spans are already in the tail and may be stored: the
        # sender's retry then stores them twice. At least once, never lost.)
        try:
            with self._lock:
                position = wal.write(payload)
                self._append_to_tail(spans)
            wal.sync(position)
        except WalWriteError as exc:
            self._wake.set()
            raise StoreUnavailable(f"{exc.strerror}; retry later") from exc
        if self._tail_spans >= self.config.segment_max_spans:
            self._wake.set()

    def check_capacity(self, incoming_spans: int = 0) -> None:
        """Raise ``StoreOverloaded`` / ``StoreUnavailable`` if a write of ``incoming_spans`` would be
        refused now: receivers ask before decoding a request, so a refused one costs no memory."""
        # Spans being flushed still hold memory until their segments commit: they count too.
        buffered = self._tail_spans + self._flushing_spans
        if buffered and buffered + incoming_spans > self.config.max_buffered_spans:
            self._wake.set()
            raise StoreOverloaded(f"{buffered} spans waiting for a flush; retry shortly")
        self.disk.check()

    def _append_to_tail(self, spans: pa.Table) -> None:
        """Add to the tail, merging runs of small batches (single-span Zipkin or UDP requests):
        DuckDB scans a table of thousands of one-row chunks ~40x slower than one chunk."""
        self._tail.append(spans)
        self._tail_spans += spans.num_rows
        self._small_run = self._small_run + 1 if spans.num_rows < _SMALL_BATCH else 0
        if self._small_run >= _SMALL_RUN_MERGE:
            merged = pa.concat_tables(self._tail[-self._small_run:]).combine_chunks()
            self._tail[-self._small_run:] = [merged]
            self._small_run = 0

    def flush(self) -> None:
        """Move the tail into committed segments now (also what the background thread does)."""
        with self._flush_lock:
            wal = self._require_wal()
            with self._lock:
                if not self._tail and not self._flushing:
                    return
                closed = wal.rotate()
                # A failed earlier flush left its spans in _flushing (and its WAL files on disk):
                # this flush covers them too.
                self._flushing, self._tail, self._tail_spans = [*self._flushing, *self._tail], [], 0
                self._flushing_spans = sum(t.num_rows for t in self._flushing)
                self._small_run = 0
            self._write_segments(pa.concat_tables(self._flushing), closed)
            wal.delete_through(closed)

    def compact(self, max_output_spans: int = 1_000_000, settled_before_ns: int | None = None
                ) -> compaction.CompactionResult:
        """Merge small segments (see storage/compaction.py), never beside a flush of this store."""
        with self._flush_lock:
            return compaction.compact(self.data_dir, self.catalog, max_output_spans,
                                      settled_before_ns=settled_before_ns)

    def drop_older_than(self, cutoff_ns: int) -> int:
        """Retention: delete hour partitions that end before ``cutoff_ns``."""
        with self._flush_lock:
            return compaction.drop_older_than(self.data_dir, cutoff_ns, self.catalog)

    def close(self) -> None:
        """Flush what is buffered and stop; a graceful shutdown leaves an empty WAL."""
        self._closed.set()
        self._wake.set()
        if self._flusher is not None:
            self._flusher.join()
        if self._wal is not None:
            self.flush()
            self._wal.close()

    # --- read path (SpanReader) -------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        """Committed segments plus the unflushed tail, taken atomically (no span twice or never)."""
        with self._lock:
            tail = [*self._flushing, *self._tail]
            segments = self.catalog.segments()
        return Snapshot(segments, pa.concat_tables(tail) if tail else SPAN_SCHEMA.empty_table())

    def get_traces(self, trace_ids: Sequence[bytes], start_time_min_ns: int | None = None,
                   start_time_max_ns: int | None = None) -> pa.Table:
        return self.reader.get_traces(trace_ids)

    def get_traces_capped(self, trace_ids: Sequence[bytes], max_spans_per_trace: int) -> pa.Table:
        """``get_traces``, reading no more of a trace once ``max_spans_per_trace`` of its spans are in."""
        return self.reader.get_traces(trace_ids, max_spans_per_trace)

    def find_trace_ids(self, query: TraceQuery) -> list[bytes]:
        return self.reader.find_trace_ids(query)

    def find_traces(self, query: TraceQuery) -> pa.Table:
        return self.reader.get_traces(self.reader.find_trace_ids(query))

    def get_services(self) -> list[str]:
        return self.reader.get_services()

    def get_operations(self, service: str, span_kind: int | None = None) -> list[Operation]:
        return self.reader.get_operations(service, span_kind)

    def get_dependencies(self, end_time_ns: int, lookback_ns: int) -> list[DependencyLink]:
        return self.reader.get_dependencies(end_time_ns, lookback_ns)

    def scan_spans(self, columns: Sequence[str], start_time_min_ns: int, start_time_max_ns: int,
                   services: Sequence[str] | None = None) -> pa.Table:
        return self.reader.scan_spans(columns, start_time_min_ns, start_time_max_ns, services)

    # --- internals ----------------------------------------------------------------------------
    def _open_for_writing(self) -> None:
        wal_dir = self.config.wal_dir or self.data_dir / "wal"
        self.writer_id = _writer_id(wal_dir)
        remove_debris(self.data_dir)
        last_flush = self.catalog.last_wal_seq(self.writer_id)
        self._wal = WriteAheadLog(wal_dir / self.writer_id, first_seq=last_flush + 1)
        self._replay(last_flush)
        self._flusher = threading.Thread(target=self._flush_loop, name="spanlake-flush", daemon=True)
        self._flusher.start()

    def _replay(self, last_flush: int) -> None:
        """Recover the WAL: redo an interrupted flush, then put later records back in the tail."""
        wal = self._require_wal()
        pending = [s for s in wal.sequences() if s != wal.current_seq]
        redo = [s for s in pending if s <= last_flush]
        if redo:  # the last flush committed (some of) its segments but did not finish
            log.info("redoing the interrupted flush of WAL files %s..%s", redo[0], redo[-1])
            self._drop_partial_flush(last_flush)
            try:
                self._write_segments(self._read_wal(redo), last_flush)
                wal.delete_through(last_flush)
                redo = []
            except OSError:  # a full disk: with the partial flush gone, replay these files instead
                log.exception("redoing the interrupted flush failed; replaying its WAL files instead")
                self.catalog.invalidate()
        later = redo + [s for s in pending if s > last_flush]
        if later:
            table = self._read_wal(later)
            log.info("replayed %d spans from %d WAL files", table.num_rows, len(later))
            with self._lock:
                self._append_to_tail(table)
            # Keep the replayed files until the next flush covers them: rotate so it does. On a
            # full disk the flush fails: start anyway (queries see the replayed spans in the tail)
            # and let the background flusher retry once space returns.
            try:
                self.flush()
            except OSError:
                log.exception("flushing the replayed WAL failed; serving anyway, will retry")

    def _drop_partial_flush(self, wal_seq: int) -> None:
        """Delete what an interrupted flush committed; its redo writes all of it again.

        (A crash during the redo itself is safe too: with these gone, the WAL files count as
        unflushed on the next start and are replayed into the tail.)
        """
        for seg in self.catalog.segments():
            if seg.meta.get("writer") == self.writer_id and \
                    seg.meta.get("wal_seq", {}).get(self.writer_id) == wal_seq:
                delete_segment(seg.path)
        self.catalog.invalidate()

    def _read_wal(self, seqs: list[int]) -> pa.Table:
        wal = self._require_wal()
        tables = [decode_batch(r) for s in seqs for r in read_records(wal.path(s))]
        return pa.concat_tables(tables) if tables else SPAN_SCHEMA.empty_table()

    def _write_segments(self, spans: pa.Table, wal_seq: int) -> None:
        """Write the flushed spans as segments, ``segment_max_spans`` rows at a time.

        Chunking bounds a flush's memory: one chunk is filtered, sorted and written at a time, so a
        flush that fell behind a burst does not copy the whole backlog at once (the 10M benchmark
        peaked at 1.2 GiB when it did). Nothing is visible until every chunk is committed.
        """
        meta = {"writer": self.writer_id, "wal_seq": {self.writer_id: wal_seq}}
        step = max(1, self.config.segment_max_spans)
        pending: list[PendingSegment] = []
        try:
            for n, offset in enumerate(range(0, spans.num_rows, step)):
                chunk = spans.slice(offset, step)
                name = f"{self.writer_id}-{wal_seq:012d}-{n:04d}"
                hours = pc.divide(chunk.column("start_time_unix_nano"), HOUR_NS)
                for hour in pc.unique(hours).to_pylist():
                    part = chunk.filter(pc.equal(hours, hour))
                    pending.append(prepare_segment(self.data_dir, partition_of(hour * HOUR_NS), name,
                                                   part, meta))
        except BaseException:
            for p in pending:  # a failed flush (full disk) leaves no temp files holding space
                p.tmp.unlink(missing_ok=True)
            raise
        with self._lock:  # publish all segments and retire the flushed tail in one step for readers
            for p in pending:
                p.commit()
                if _PAUSE_AFTER_COMMIT_S:
                    time.sleep(_PAUSE_AFTER_COMMIT_S)
            self.catalog.invalidate()
            self._flushing, self._flushing_spans = [], 0

    def _flush_loop(self) -> None:
        while not self._closed.is_set():
            # Unflushed spans left by a failed flush (a full disk) are retried soon, not a whole
            # flush interval later: that is how the store recovers by itself once space returns.
            retry_soon = bool(self._flushing)
            self._wake.wait(min(self.config.flush_interval_s, _RETRY_FLUSH_S) if retry_soon
                            else self.config.flush_interval_s)
            self._wake.clear()
            if self._closed.is_set():
                return
            try:
                self.flush()
            except Exception:  # keep flushing later; the WAL still holds everything
                log.exception("flush failed; will retry")
                time.sleep(1)

    def _require_wal(self) -> WriteAheadLog:
        if self._wal is None:
            raise RuntimeError("this store was opened read-only")
        return self._wal


def _writer_id(wal_dir: Path) -> str:
    """This data directory's writer ID: made once, kept in the WAL directory."""
    wal_dir.mkdir(parents=True, exist_ok=True)
    path = wal_dir / "writer-id"
    if not path.exists():
        path.write_text(secrets.token_hex(4))
    return path.read_text().strip()


def open_store(data_dir: Path, flush_interval_s: float = 1.0, **kwargs: object) -> SegmentStore:
    """A writable store on ``data_dir`` (the conformance suite's factory)."""
    return SegmentStore(Path(data_dir), StoreConfig(flush_interval_s=flush_interval_s, **kwargs))  # type: ignore[arg-type]
