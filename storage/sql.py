"""Read-only SQL over spans: one DuckDB query, under limits, on one snapshot of the store.

Safety rests on DuckDB's own switches, not on string filters. A query runs in a database opened for
its snapshot's segment files: external access off (no file, network, extension or replacement-scan
access from SQL) except ``allowed_paths``, which lists exactly those files; then the configuration
is locked (no ``SET``/``RESET``/``PRAGMA`` can loosen it), with no extension autoload/autoinstall
and no spilling to disk. Only after the lock are the views created, so they read nothing a user's
own query could not. On local disk the segments are read by DuckDB's own Parquet reader
(``read_parquet`` of that file list: a user calling it directly gets the same spans the views show,
and any other path, sidecar, WAL file, temporary file or another tenant's segment is refused); on
object storage they arrive as a pyarrow dataset and no path is allowed at all. The unflushed tail
is an Arrow table registered by us. On top, DuckDB's parser must see exactly one statement of type
SELECT, so nothing that writes or changes state (``CREATE``, ``INSERT``, ``ATTACH``, ``CALL``,
``SET VARIABLE``, ...) runs even where external access would not stop it.

Why a database per file list rather than one shared: ``allowed_paths`` is a database-wide setting
that the lock freezes, and the allowed files differ per snapshot and per tenant (``_Databases``).

Limits: a timer interrupts the query's connection after ``timeout_s``; ``max_concurrent`` queries
run at once and the next is refused (``SqlBusy``), never queued; DuckDB's ``memory_limit`` bounds
the working memory of the queries on one database and ``threads`` its worker threads; at most
``max_rows`` rows come back, and ``max_rows + 1`` are fetched so that ``truncated`` is honest.
Every call blocks: callers on an event loop run it in a thread.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from spanlake.storage.catalog import Snapshot
from spanlake.storage.location import StorageUnavailable
from spanlake.storage.schema import SPAN_SCHEMA
from spanlake.storage.segments import END_TIME_SQL, local_files, parquet_scan_sql, segments_dataset
from spanlake.storage.sql_views import MACRO_SQL, SOURCE, VIEWS

# The only statement type a query may have. EXPLAIN is left out: EXPLAIN ANALYZE runs its
# statement, whatever that statement is.
_ALLOWED = {duckdb.StatementType.SELECT}
_BATCH_ROWS = 1024  # small batches: the result-size limit is checked between them


class SqlError(Exception):
    """A query that cannot run: the message is DuckDB's (or says which rule refused it)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SqlTimeout(SqlError):
    """The query ran past the time limit and was interrupted."""


class SqlBusy(SqlError):
    """``max_concurrent`` queries are already running; retry shortly."""


@dataclass(frozen=True)
class SqlResult:
    columns: list[str]
    table: pa.Table
    truncated: bool
    elapsed_ms: float


class SqlEngine:
    """Runs read-only SQL over the spans of ``snapshot()`` (see ``docs/sql.md`` for the views)."""

    def __init__(self, snapshot: Callable[[], Snapshot], *, timeout_s: float = 30.0,
                 max_rows: int = 10_000, memory_limit: str = "2GB", max_concurrent: int = 4,
                 threads: int = 2, max_result_bytes: int = 64 * 1024 * 1024) -> None:
        self._snapshot = snapshot
        self.timeout_s = timeout_s
        self.max_rows = max_rows
        self.max_result_bytes = max_result_bytes
        self._slots = threading.BoundedSemaphore(max_concurrent)
        self._running = 0
        self._running_lock = threading.Lock()
        self._databases = _Databases(memory_limit, threads)
        self._databases.cursor(())  # a bad memory_limit fails here, not at the first query

    @property
    def running(self) -> int:
        """Queries holding a slot right now (for operators' metrics and for tests that wait on it)."""
        return self._running

    def execute(self, query: str, max_rows: int | None = None, *, slot_held: bool = False) -> SqlResult:
        """Run one SELECT; at most ``max_rows`` rows (never more than the engine's own cap).

        ``slot_held``: the caller already holds a slot from ``slot()`` (to parse its request only
        once admitted)."""
        if slot_held:
            return self._run(check_query(query), self._limit(max_rows))
        with self.slot():
            return self._run(check_query(query), self._limit(max_rows))

    @contextmanager
    def slot(self) -> Iterator[None]:
        """One of the ``max_concurrent`` query slots, or ``SqlBusy`` at once (never queued)."""
        if not self._slots.acquire(blocking=False):
            raise SqlBusy("too many SQL queries are running; retry shortly")
        with self._running_lock:
            self._running += 1
        try:
            yield
        finally:
            with self._running_lock:
                self._running -= 1
            self._slots.release()

    def _limit(self, max_rows: int | None) -> int:
        return self.max_rows if max_rows is None else max(0, min(max_rows, self.max_rows))

    def close(self) -> None:
        self._databases.clear()

    def _run(self, statement: str, limit: int) -> SqlResult:
        started = time.perf_counter()
        con = self._connection()
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            con.interrupt()

        timer = threading.Timer(self.timeout_s, expire)
        timer.daemon = True
        timer.start()
        try:
            table, truncated = _fetch(con, statement, limit, self.max_result_bytes)
        except duckdb.Error as e:
            if store_unreadable(e):
                raise StorageUnavailable(f"cannot read the span store: {e}") from None
            if expired.is_set():
                raise SqlTimeout(f"query interrupted: it ran past the {self.timeout_s:g} s time limit "
                                 "(sql_timeout)") from None
            raise SqlError(str(e)) from None
        finally:
            timer.cancel()
            con.close()
        return SqlResult(table.column_names, table, truncated, (time.perf_counter() - started) * 1000)

    def _connection(self) -> duckdb.DuckDBPyConnection:
        """A connection of its own for one query: this snapshot's spans and the views over them.

        Compaction may delete a listed segment between the snapshot and the query's start (its
        merged replacement is committed first): take a fresh snapshot and try once more.
        """
        for attempt in range(2):
            snap = self._snapshot()
            try:
                return self._open_snapshot(snap)
            except FileNotFoundError as e:
                if attempt:
                    raise SqlError(f"a segment was removed while the query started ({e}); retry") from None
        raise AssertionError("unreachable")

    def _open_snapshot(self, snap: Snapshot) -> duckdb.DuckDBPyConnection:
        """A cursor whose views show ``snap``, on a database that may read its files and no other;
        FileNotFoundError if one of them is gone."""
        files = tuple(local_files(snap.segments) or ())  # a local store, or a remote one's disk cache
        _check_present(files)
        con = self._databases.cursor(files)
        try:
            _create_views(con, snap, list(files))
        except duckdb.Error as e:
            con.close()
            _check_present(files)  # deleted between the check and DuckDB's open: refused as not allowed
            # Our own views over our own files: a failure here is the store's, not the query's.
            raise StorageUnavailable(f"cannot read the span store: {e}") from None
        except BaseException:
            con.close()
            raise
        return con


class _Databases:
    """Open databases, each allowed to read one set of segment files (one snapshot's), newest kept.

    ``allowed_paths`` is database-wide and frozen by the lock, so each distinct file list needs a
    database of its own; opening one and parsing the segment footers costs more than a small query
    (tens of ms), so the last few are kept and a query whose snapshot lists the same files (no
    flush or compaction since) reuses one through a cursor of its own. The files are immutable, so
    DuckDB's Parquet metadata cache stays right. A database dropped from here is closed by DuckDB
    once its last running query closes its cursor (closing it here would refuse while busy).
    """

    def __init__(self, memory_limit: str, threads: int, keep: int = 4) -> None:
        self._memory_limit = memory_limit
        self._threads = threads
        self._keep = keep
        self._lock = threading.Lock()
        self._open: OrderedDict[tuple[str, ...], duckdb.DuckDBPyConnection] = OrderedDict()

    def cursor(self, files: tuple[str, ...]) -> duckdb.DuckDBPyConnection:
        with self._lock:
            db = self._open.get(files)
            if db is not None:
                self._open.move_to_end(files)
                return db.cursor()
        fresh = _open_database(list(files), self._memory_limit, self._threads)  # slow: not under the lock
        with self._lock:
            db = self._open.setdefault(files, fresh)
            self._open.move_to_end(files)
            while len(self._open) > self._keep:
                self._open.popitem(last=False)
            return db.cursor()

    def clear(self) -> None:
        with self._lock:
            self._open.clear()


def store_unreadable(e: duckdb.Error) -> bool:
    """Whether DuckDB failed because the store could not be read: its own file reader's IOException,
    or (on S3, where it scans pyarrow datasets) the Arrow stream's IOError, which it reports as
    invalid input."""
    return isinstance(e, duckdb.IOException) or (
        isinstance(e, duckdb.InvalidInputException) and "failed: IOError:" in str(e))


def check_query(query: str) -> str:
    """The query's one statement, if DuckDB's parser says it is a single SELECT; else SqlError."""
    try:
        statements = duckdb.extract_statements(query)
    except duckdb.Error as e:
        raise SqlError(str(e)) from None
    if not statements:
        raise SqlError("empty query: send one SELECT statement")
    if len(statements) > 1:
        raise SqlError(f"one statement per query, got {len(statements)}")
    kind = statements[0].type
    if kind not in _ALLOWED:
        raise SqlError(f"only SELECT queries are allowed (this is a {kind.name} statement)")
    return str(statements[0].query)


def _check_present(files: tuple[str, ...]) -> None:
    for path in files:
        if not os.path.exists(path):
            raise FileNotFoundError(path)


def _open_database(allowed_paths: list[str], memory_limit: str, threads: int) -> duckdb.DuckDBPyConnection:
    """A fresh in-memory database that can read ``allowed_paths`` and no other file, locked."""
    config: dict[str, str | bool | int | float | list[str]] = {
        "autoload_known_extensions": False,
        "autoinstall_known_extensions": False,
        "allow_community_extensions": False,
        "python_enable_replacements": False,  # no scanning of Python variables by name
        "temp_directory": "",  # no spilling: a query over the memory limit fails instead of filling the disk
        "memory_limit": memory_limit,
        "threads": threads,
    }
    try:
        db = duckdb.connect(":memory:", config=config)
    except duckdb.Error as e:
        raise ValueError(f"cannot open the SQL engine: {e}") from None
    try:
        # DuckDB takes allowed_paths only while external access is still on (and not at connect):
        # set it, then switch external access off, then lock. Nothing has run in between.
        db.execute("SET allowed_paths = $paths", {"paths": allowed_paths})
        db.execute("SET parquet_metadata_cache = true")  # segment files never change: parse each footer once
        db.execute("SET enable_external_access = false")
        # From here on no statement can change a setting, including the ones above.
        db.execute("SET lock_configuration = true")
        for macro in MACRO_SQL:
            db.execute(macro)
    except BaseException:
        db.close()
        raise
    return db


def _create_views(db: duckdb.DuckDBPyConnection, snap: Snapshot, files: list[str]) -> None:
    """``SOURCE`` (segments then tail) and the user's views over it, as TEMP views of one cursor.

    The tail is handed over as a table, not a dataset: it is one chunk per acknowledged request,
    and DuckDB scans a dataset fragment by fragment holding the GIL (68,000 small chunks took 10 s
    and stalled every other thread; as a table, 0.2 s). Segment files are few and large: locally
    DuckDB reads them itself, on S3 through a pyarrow dataset (DuckDB would need httpfs).
    """
    tail = snap.tail if snap.tail.schema == SPAN_SCHEMA else snap.tail.cast(SPAN_SCHEMA)
    db.register("_tail", tail)
    if not snap.segments:
        db.execute(f"CREATE TEMP VIEW {SOURCE} AS SELECT * FROM _tail")
    else:
        if files:
            scan = parquet_scan_sql(files)
        else:
            db.register("_segments", segments_dataset(snap.segments))
            scan = "_segments"
        db.execute(f"CREATE TEMP VIEW {SOURCE} AS SELECT *, {END_TIME_SQL} FROM {scan} "
                   "UNION ALL BY NAME SELECT * FROM _tail")
    for view in VIEWS:
        db.execute(view)


def _fetch(con: duckdb.DuckDBPyConnection, statement: str, limit: int,
           max_bytes: int) -> tuple[pa.Table, bool]:
    """Stream batches until ``limit + 1`` rows are in: the query stops there, not at its end.

    Past ``max_bytes`` of result the query is stopped with an error: ``max_rows`` alone let
    ``SELECT repeat('x', 200000000) FROM range(5)`` return 1 GB (issue 14)."""
    relation = con.sql(statement)
    if relation is None:
        raise SqlError("the query returns no result")
    reader = relation.to_arrow_reader(_BATCH_ROWS)
    batches: list[pa.RecordBatch] = []
    rows = size = 0
    for batch in reader:
        batches.append(batch)
        rows += batch.num_rows
        size += batch.nbytes
        if size > max_bytes:
            reader.close()
            raise SqlError(f"the result exceeds {max_bytes} bytes (sql_max_result_bytes); select fewer "
                           "or smaller columns, or aggregate")
        if rows > limit:
            break
    reader.close()
    table = pa.Table.from_batches(batches, schema=reader.schema)
    return table.slice(0, limit), rows > limit
