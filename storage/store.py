"""The segment store: WAL + in-memory tail + immutable Parquet segments, one writer per process.

Write path: ``write`` appends the batch to the WAL (fsync) and to the in-memory tail, then returns:
the spans are durable and already visible (readers query the tail beside the segments). A
background thread flushes the tail into segments every ``flush_interval_s`` or when it reaches
``segment_max_spans``, then deletes the WAL files the flush covered.

The store is a local directory or an S3 prefix (``storage/location.py``); the WAL is always on
local disk, locked by this process (``storage/wal_lock.py``).

Crash safety: segments are named ``<writer>-<last WAL seq>-<n>``, so a flush cut short (by a crash,
or by an object store that went away) is redone under the same names, overwriting whatever part
of it was written: on restart from the WAL files it covered, which are deleted only after the
whole flush is written; in a running process from the spans it still holds, before anything newer.
A compacted segment ``replaces`` inputs by name, so a rewritten input stays hidden behind it.

Tenants: every span is written for one tenant (``for_tenant(name)`` gives the view a request of that
tenant uses); its segments go under ``spans/tenant=NAME/`` in the directory or the bucket alike, and
its WAL records carry the tenant, so a replay puts each span back under its own tenant.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from spanlake.storage import compaction
from spanlake.storage.api import (
    DEFAULT_TENANT,
    DependencyLink,
    Operation,
    StoreOverloaded,
    StoreUnavailable,
    TraceQuery,
    check_tenant,
)
from spanlake.storage.cache import DiskCache
from spanlake.storage.catalog import DEFAULT_REFRESH_S, Catalog, Snapshot, flush_key
from spanlake.storage.diskspace import DiskReserve
from spanlake.storage.lease import Lease
from spanlake.storage.location import Location, local_location
from spanlake.storage.reader import Reader
from spanlake.storage.schema import SPAN_SCHEMA
from spanlake.storage.segments import (
    HOUR_NS,
    delete_segment,
    list_segment_paths,
    partition_of,
    remove_debris,
    write_segment,
)
from spanlake.storage.wal import WalWriteError, WriteAheadLog, decode_batch, encode_batch, read_records
from spanlake.storage.wal_lock import WalDirectoryLock, writer_id

log = logging.getLogger(__name__)

_TENANT_KEY = b"spanlake.tenant"
_SMALL_BATCH = 1024
_SMALL_RUN_MERGE = 64
_RETRY_FLUSH_S = 5.0
# Failpoint for the crash tests: seconds to stall after each segment commit of a flush, so a test
# can kill -9 the process between the commits of one flush. Never set in production.
_PAUSE_AFTER_COMMIT_S = float(os.environ.get("SPANLAKE_TEST_FLUSH_PAUSE", "0"))


def _ignore(*args: object) -> None:
    pass


@dataclass
class StoreEvents:
    """What the store reports as it works, for metrics; each callable must be cheap and not raise."""

    fsync: Callable[[float], None] = _ignore  # seconds of one WAL fsync
    flush: Callable[[float, int, int], None] = _ignore  # seconds, spans, bytes written
    compaction: Callable[[float, int, int], None] = _ignore  # seconds, input segments, spans merged


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
    # How often a reader lists the store for segments other processes wrote.
    refresh_s: float = DEFAULT_REFRESH_S
    # Compaction keeps the segments it replaced this long, for queries that listed them before.
    compaction_grace_s: float = 0.0
    # Where sidecars of a remote store are kept on local disk (None: memory only).
    cache_dir: Path | None = None
    # Whole segment files of a remote store kept in ``cache_dir`` (least recently used first out):
    # searches then read them locally instead of by many byte-range requests.
    segment_cache_bytes: int = 0


class _ReadThroughReader:
    """The ``SpanReader`` methods, each answered by ``self.reader`` (one Reader per tenant)."""

    reader: Reader

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


class SegmentStore(_ReadThroughReader):
    """Implements ``SpanWriter`` and ``SpanReader`` over a store (``storage``, default: ``data_dir``)."""

    def __init__(self, data_dir: Path, config: StoreConfig = StoreConfig(), writable: bool = True,
                 storage: Location | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.config = config
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.loc = storage or local_location(self.data_dir)
        self._lock = threading.Lock()  # guards the tail and WAL rotation together
        self._tails: dict[str, _Tail] = {}  # per tenant
        self._tail_spans = 0  # in every tenant's tail
        self._flushing: list[tuple[str, pa.Table]] = []  # (tenant, spans) being flushed
        self._flushing_spans = 0
        self._flush_lock = threading.Lock()  # one flush at a time
        self._wake = threading.Event()
        self._closed = threading.Event()
        cache = (DiskCache(config.cache_dir, config.segment_cache_bytes)
                 if config.cache_dir and not self.loc.is_local else None)
        self.catalog = Catalog(self.loc, config.refresh_s, cache)
        self.reader = Reader(self.snapshot)
        self._tenants: dict[str, TenantStore] = {}
        self.events = StoreEvents()
        self._wal: WriteAheadLog | None = None
        self._wal_lock: WalDirectoryLock | None = None
        self.writer_id = ""
        # This writer's last flush that is wholly written and retired from the tail: its later
        # segments stay out of snapshots until then, or they would be read twice (also in the tail).
        self._published = -1
        self._retry: int | None = None  # WAL position of a flush that failed part-way
        self._flusher: threading.Thread | None = None
        self.disk = DiskReserve([self.data_dir, config.wal_dir or self.data_dir / "wal"],
                                config.disk_reserve_bytes)
        if writable:
            self._open_for_writing()

    # --- write path -------------------------------------------------------------------------
    def write(self, spans: pa.Table, tenant: str = DEFAULT_TENANT) -> None:
        """Durably store ``spans`` for ``tenant`` (``SpanWriter.write`` of ``for_tenant(tenant)``)."""
        check_tenant(tenant)
        if spans.num_rows == 0:
            return
        wal = self._require_wal()
        self.check_capacity(spans.num_rows)
        spans = spans.cast(SPAN_SCHEMA) if spans.schema != SPAN_SCHEMA else spans
        # The tenant travels in the WAL record's schema metadata, so a replay puts it back.
        payload = encode_batch(spans.replace_schema_metadata({_TENANT_KEY: tenant}))
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
                self._append_to_tail(tenant, spans)
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

    def _append_to_tail(self, tenant: str, spans: pa.Table) -> None:
        self._tails.setdefault(tenant, _Tail()).append(spans)
        self._tail_spans += spans.num_rows
        self._tail_spans += spans.num_rows

    def flush(self) -> None:
        """Move the tail into committed segments now (also what the background thread does)."""
        with self._flush_lock:
            wal = self._require_wal()
            if self._retry is not None:
                # A flush failed part-way: write it again, under the same names, before anything
                # newer, so its pieces already written are overwritten, never duplicated.
                self._write_segments(list(self._flushing), self._retry)
                wal.delete_through(self._retry)
                self._retry = None
            with self._lock:
                if not self._tails:
                    return
                closed = wal.rotate()
                self._flushing = [(tenant, t) for tenant, tail in self._tails.items() for t in tail.tables]
                self._tails, self._tail_spans = {}, 0
                self._flushing_spans = sum(t.num_rows for _, t in self._flushing)
            self._retry = closed
            started = time.perf_counter()
            spans, size = self._write_segments(list(self._flushing), closed)
            self._retry = None
            wal.delete_through(closed)
            self.events.flush(time.perf_counter() - started, spans, size)

    def compact(self, max_output_spans: int = compaction.MERGED_SEGMENT_SPANS,
                settled_before_ns: int | None = None,
                lease: Lease | None = None) -> compaction.CompactionResult:
        """Merge small segments (see storage/compaction.py); each merge waits for a flush of this store
        to finish, and flushes go on between merges."""
        started = time.perf_counter()
        result = compaction.compact(
            self.loc, self.catalog, max_output_spans, settled_before_ns=settled_before_ns,
            grace_s=self.config.compaction_grace_s,
            still_leader=lease.held if lease else lambda: True,
            holder=lease.holder if lease else self.writer_id or "compactor",
            exclusive=lambda: self._flush_lock)
        if result.inputs:
            self.events.compaction(time.perf_counter() - started, result.inputs, result.spans)
        return result

    def drop_older_than(self, cutoff_ns: int, tenant: str | None = None, lease: Lease | None = None) -> int:
        """Retention: delete hour partitions (of ``tenant``, or of all) that end before ``cutoff_ns``."""
        with self._flush_lock:
            return compaction.drop_older_than(self.loc, cutoff_ns, self.catalog, tenant,
                                              lease.held if lease else lambda: True)

    def wal_bytes(self) -> int:
        """Bytes in this store's WAL files (what a crash would replay)."""
        if self._wal is None:
            return 0
        total = 0
        for path in self._wal.directory.glob("*.wal"):
            with contextlib.suppress(FileNotFoundError):  # deleted by a flush meanwhile
                total += path.stat().st_size
        return total

    def tenants(self) -> list[str]:
        """Every tenant with committed segments or buffered spans."""
        with self._lock:
            names = set(self._tails) | {t for t, _ in self._flushing}
        return sorted(names | {s.tenant for s in self.catalog.segments()})

    def for_tenant(self, tenant: str) -> TenantStore:
        """The writer and reader of one tenant: it sees only that tenant's spans."""
        check_tenant(tenant)
        view = self._tenants.get(tenant)
        if view is None:  # a race here makes two equivalent views; either is fine
            view = self._tenants[tenant] = TenantStore(self, tenant)
        return view

    def close(self) -> None:
        """Flush what is buffered and stop; a graceful shutdown leaves an empty WAL."""
        self._closed.set()
        self._wake.set()
        if self._flusher is not None:
            self._flusher.join()
        if self._wal is not None:
            try:
                self.flush()
            finally:
                self._wal.close()
                if self._wal_lock is not None:
                    self._wal_lock.release()

    # --- read path (SpanReader) -------------------------------------------------------------
    def snapshot(self, tenant: str = DEFAULT_TENANT) -> Snapshot:
        """``tenant``'s committed segments plus its unflushed tail, taken atomically (no span twice
        or never)."""
        with self._lock:
            tail = [t for owner, t in self._flushing if owner == tenant]
            if tenant in self._tails:
                tail += self._tails[tenant].tables
            segments = [s for s in self.catalog.segments()
                        if s.tenant == tenant and not self._unpublished(s.path)]
        return Snapshot(segments, pa.concat_tables(tail) if tail else SPAN_SCHEMA.empty_table())

    # --- internals ----------------------------------------------------------------------------
    def _open_for_writing(self) -> None:
        wal_dir = self.config.wal_dir or self.data_dir / "wal"
        self._wal_lock = WalDirectoryLock(wal_dir)  # raises WalDirectoryInUse: nothing touched yet
        try:
            self.writer_id = writer_id(wal_dir)
            remove_debris(self.loc, self.writer_id)
            last_flush = self.catalog.last_wal_seq(self.writer_id)
            self._published = last_flush
            self._wal = WriteAheadLog(wal_dir / self.writer_id, first_seq=last_flush + 1)
            self._wal.on_fsync = lambda seconds: self.events.fsync(seconds)
            self._replay(last_flush)
        except BaseException:
            self._wal_lock.release()
            raise
        self._flusher = threading.Thread(target=self._flush_loop, name="spanlake-flush", daemon=True)
        self._flusher.start()

    def _replay(self, last_flush: int) -> None:
        """Recover the WAL: redo an interrupted flush, then put later records back in the tail."""
        wal = self._require_wal()
        pending = [s for s in wal.sequences() if s != wal.current_seq]
        redo = [s for s in pending if s <= last_flush]
        if redo:  # the last flush wrote (some of) its segments but did not finish
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
            batches = self._read_wal(later)
            log.info("replayed %d spans from %d WAL files", sum(t.num_rows for _, t in batches), len(later))
            with self._lock:
                for tenant, table in batches:
                    self._append_to_tail(tenant, table)
            # Keep the replayed files until the next flush covers them: rotate so it does. On a
            # full disk the flush fails: start anyway (queries see the replayed spans in the tail)
            # and let the background flusher retry once space returns.
            try:
                self.flush()
            except OSError:
                log.exception("flushing the replayed WAL failed; serving anyway, will retry")

    def _unpublished(self, path: str) -> bool:
        key = flush_key(path)
        return key is not None and key[0] == self.writer_id and key[1] > self._published

    def _drop_partial_flush(self, wal_seq: int) -> None:
        """Delete what an interrupted flush wrote; its redo writes all of it again (perhaps cut
        differently, if ``segment_max_spans`` changed meanwhile).

        (A crash during the redo itself is safe too: with these gone, the WAL files count as
        unflushed on the next start and are replayed into the tail.)
        """
        for path in list_segment_paths(self.loc):
            if flush_key(path) == (self.writer_id, wal_seq):
                delete_segment(self.loc, path)
        self.catalog.invalidate()

    def _read_wal(self, seqs: list[int]) -> list[tuple[str, pa.Table]]:
        """(tenant, spans) of every record of these WAL files, in order."""
        wal = self._require_wal()
        out = []
        for table in (decode_batch(r) for s in seqs for r in read_records(wal.path(s))):
            tenant = (table.schema.metadata or {}).get(_TENANT_KEY, DEFAULT_TENANT.encode()).decode()
            out.append((tenant, table.replace_schema_metadata(None)))
        return out

    def _write_segments(self, batches: list[tuple[str, pa.Table]], wal_seq: int) -> tuple[int, int]:
        """Write the flushed spans as segments, ``segment_max_spans`` rows at a time, each tenant
        under its own prefix.

        Chunking bounds a flush's memory: one chunk is filtered, sorted and written at a time, so a
        flush that fell behind a burst does not copy the whole backlog at once (the 10M benchmark
        peaked at 1.2 GiB when it did). Readers in this process see none of it until every part is
        written (they read these spans from the tail until then); readers elsewhere may see the
        parts as they land, each whole and none twice.
        Returns the spans and the bytes (segment files) written.
        """
        step = max(1, self.config.segment_max_spans)
        meta = {"writer": self.writer_id, "wal_seq": {self.writer_id: wal_seq}}
        by_tenant: dict[str, list[pa.Table]] = {}
        for tenant, table in batches:
            by_tenant.setdefault(tenant, []).append(table)
        n = size = 0
        for tenant, tables in sorted(by_tenant.items()):
            spans = pa.concat_tables(tables)
            for offset in range(0, spans.num_rows, step):
                chunk = spans.slice(offset, step)
                name = f"{self.writer_id}-{wal_seq:012d}-{n:04d}"
                n += 1
                hours = pc.divide(chunk.column("start_time_unix_nano"), HOUR_NS)
                for hour in pc.unique(hours).to_pylist():
                    part = chunk.filter(pc.equal(hours, hour))
                    partition = partition_of(hour * HOUR_NS, tenant)
                    size += write_segment(self.loc, partition, name, part, meta)[1]
                if _PAUSE_AFTER_COMMIT_S:
                    time.sleep(_PAUSE_AFTER_COMMIT_S)
        with self._lock:  # publish the flush and retire its tail in one step for readers
            self._published = wal_seq
            self.catalog.invalidate()
            self._flushing, self._flushing_spans = [], 0
        return sum(t.num_rows for _, t in batches), size

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
            except OSError as e:
                if self.loc.is_local:
                    log.exception("flush failed; will retry")
                else:  # the object store is away: one line per attempt, not a stack trace
                    log.warning("upload to %s failed, retrying in 1 s; %d spans wait in the WAL: %s",
                                self.loc.uri, self._tail_spans + self._flushing_spans, e)
                time.sleep(1)
            except Exception:  # keep flushing later; the WAL still holds everything
                log.exception("flush failed; will retry")
                time.sleep(1)

    def _require_wal(self) -> WriteAheadLog:
        if self._wal is None:
            raise RuntimeError("this store was opened read-only")
        return self._wal


class _Tail:
    """One tenant's unflushed spans, merging runs of small batches (single-span Zipkin or UDP
    requests): DuckDB scans a table of thousands of one-row chunks ~40x slower than one chunk."""

    def __init__(self) -> None:
        self.tables: list[pa.Table] = []
        self._small_run = 0  # how many small batches end the tail

    def append(self, spans: pa.Table) -> None:
        self.tables.append(spans)
        self._small_run = self._small_run + 1 if spans.num_rows < _SMALL_BATCH else 0
        if self._small_run >= _SMALL_RUN_MERGE:
            merged = pa.concat_tables(self.tables[-self._small_run:]).combine_chunks()
            self.tables[-self._small_run:] = [merged]
            self._small_run = 0


class TenantStore(_ReadThroughReader):
    """``SpanWriter`` and ``SpanReader`` of one tenant of a ``SegmentStore``: writes go under the
    tenant's prefix, and every read sees that tenant's segments and tail only."""

    def __init__(self, store: SegmentStore, tenant: str) -> None:
        self.store = store
        self.tenant = tenant
        self.reader = Reader(self.snapshot, shared=store.reader)

    def snapshot(self) -> Snapshot:
        return self.store.snapshot(self.tenant)

    def write(self, spans: pa.Table) -> None:
        self.store.write(spans, self.tenant)


def open_store(data_dir: Path, flush_interval_s: float = 1.0, **kwargs: object) -> SegmentStore:
    """A writable store on ``data_dir`` (the conformance suite's factory)."""
    return SegmentStore(Path(data_dir), StoreConfig(flush_interval_s=flush_interval_s, **kwargs))  # type: ignore[arg-type]
