"""Immutable Parquet segments: how they are written, named, described and found again.

Layout under the data directory (stable; documented in docs/storage.md)::

    spans/tenant=T/date=2026-11-26/hour=03/<writer>-<walseq>-<n>.parquet   one segment (zstd Parquet)
    spans/tenant=T/date=2026-11-26/hour=03/<writer>-<walseq>-<n>.tids      its sorted distinct trace IDs
    spans/tenant=T/date=2026-11-26/hour=03/<writer>-<walseq>-<n>.bloom     Bloom filter of its attributes

The tenant prefix sits above the date partitions so that retention, deletion and hand-over can be
per tenant (a tenant's data is one directory). Segments written before tenants existed sit directly
under ``spans/date=...`` and belong to the default tenant.

The layout is the same in a local directory and under an S3 prefix (``storage/location.py``). Each
file is written whole or not at all (``write_object``: temp file + rename locally, one PUT on S3),
sidecars first and the ``.parquet`` last: the segment file is the commit marker, so a reader never
sees a segment without its sidecars.

The footer carries a JSON description (``spanlake`` key) so readers prune without
scanning: format version, time range, counts, services and operations, and the WAL position it
covers (which is how a restart knows what to replay).
"""

from __future__ import annotations

import fnmatch
import json
import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NotRequired, TypedDict

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from spanlake.storage.api import DEFAULT_TENANT, check_tenant
from spanlake.storage.bloom import Bloom, attribute_items, string_pair, typed_key
from spanlake.storage.cache import DiskCache
from spanlake.storage.footers import FOOTERS
from spanlake.storage.location import Location, delete_files, download, list_files, read_object, write_object
from spanlake.storage.location import fsync_path as fsync_path  # the WAL imports it from here
from spanlake.storage.schema import FORMAT_VERSION, SPAN_SCHEMA

SPANS_DIR = "spans"
META_KEY = b"spanlake"
HOUR_NS = 3600 * 10**9
SIDECARS = (".tids", ".bloom")
# Row groups of this many spans. A trace lookup decodes the one row group its ID falls in, so this
# sets the lookup cost; bigger groups compress better. `python -m bench.layout` on the benchmark's
# data: 4,096 spans -> ~8 ms per lookup, 56.5 B/span; 8,192 -> ~14 ms, 54.3 B/span; 32,768 -> ~40 ms,
# 52.4 B/span. Trace by ID is the query users wait on most, so it wins.
ROW_GROUP_SPANS = 4_096
# bench/layout.py: level 3 is ~1% smaller than the default level 1 at a small CPU cost.
ZSTD_LEVEL = 3


def _leaf_paths(schema: pa.Schema) -> list[str]:
    """Parquet leaf column paths (``span_attributes.list.element.key``...) of an Arrow schema."""
    sink = pa.BufferOutputStream()
    pq.write_table(schema.empty_table(), sink)
    meta = pq.read_metadata(pa.BufferReader(sink.getvalue()))
    return [meta.schema.column(i).path for i in range(meta.num_columns)]


# end_time_unix_nano is not stored: it is start + duration, and storing it cost 5.7 B/span (10% of a
# segment) on the benchmark's data. Readers add it back (``read_segment``, ``END_TIME_SQL``).
_DERIVED = "end_time_unix_nano"
STORED_SCHEMA = SPAN_SCHEMA.remove(SPAN_SCHEMA.get_field_index(_DERIVED))
END_TIME_SQL = f"start_time_unix_nano + duration_nano AS {_DERIVED}"



class SegmentMeta(TypedDict):
    """The footer description (JSON under the ``spanlake`` key): what readers prune on."""

    format_version: int
    span_count: int
    trace_count: int
    min_start_ns: int
    max_start_ns: int
    max_end_ns: int
    services: list[str]
    operations: list[list[Any]]  # [service, name, kind]
    writer: NotRequired[str]  # the flushing writer; absent on compacted segments
    wal_seq: NotRequired[dict[str, int]]  # per writer, the last WAL file this segment covers
    replaces: NotRequired[list[str]]  # compaction: the segments (relative paths) this one replaces
    compacted_by: NotRequired[str]  # compaction: the lease holder that wrote it
    compacted_at_ns: NotRequired[int]  # compaction: when; its inputs are deleted a grace period later


_META_TYPES: dict[str, type | tuple[type, ...]] = {
    "format_version": int, "span_count": int, "trace_count": int, "min_start_ns": int,
    "max_start_ns": int, "max_end_ns": int, "services": list, "operations": list,
}


class SegmentFormatError(ValueError):
    """A segment whose footer this version of spanlake cannot read; the message names the file."""


def parse_meta(path: str, raw: bytes) -> SegmentMeta:
    """The footer description of ``path``, checked: its format version and the fields readers use."""
    try:
        meta = json.loads(raw)
    except ValueError as exc:
        raise SegmentFormatError(f"{path}: segment footer is not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise SegmentFormatError(f"{path}: segment footer is not a JSON object")
    version = meta.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise SegmentFormatError(f"{path}: segment footer has no valid format_version")
    if version > FORMAT_VERSION:
        raise SegmentFormatError(f"{path}: segment format version {version} is newer than this spanlake "
                                 f"reads (up to {FORMAT_VERSION}); upgrade spanlake to read it")
    for key, kind in _META_TYPES.items():
        if not isinstance(meta.get(key), kind):
            raise SegmentFormatError(f"{path}: segment footer (format version {version}) lacks {key!r}")
    return meta  # type: ignore[return-value]  # checked field by field above


# Dictionary-encode every column but span_id and the start time: span IDs are random and unique, so a
# dictionary only adds its index on top of the 8 raw bytes (1.5 B/span more, bench/layout.py). Start
# times are delta-encoded instead: rows are sorted by trace, then start, so consecutive starts are
# close (on the 10M benchmark's segments: 54.7 instead of 56.6 B/span, same write CPU).
_DELTA_COLUMNS = {"start_time_unix_nano": "DELTA_BINARY_PACKED"}
_DICTIONARY_COLUMNS = [p for p in _leaf_paths(STORED_SCHEMA) if p != "span_id" and p not in _DELTA_COLUMNS]


@dataclass
class Segment:
    """A committed segment as readers see it: its path, footer description and trace-ID stats."""

    loc: Location
    path: str
    meta: SegmentMeta
    # Per row group (min, max) trace ID: segments are sorted by trace ID, so one ID lives in
    # (nearly always) one row group and a lookup reads only that one.
    row_group_ranges: list[tuple[bytes, bytes]]
    size: int | None = None  # bytes, when the listing said: saves a request per read on S3
    cache: DiskCache | None = field(default=None, repr=False)  # sidecars on local disk (remote stores)
    _trace_ids: np.ndarray | None = field(default=None, repr=False)
    _bloom: Bloom | None = field(default=None, repr=False)
    _bloom_loaded: bool = field(default=False, repr=False)
    # The parsed Parquet footer while FOOTERS keeps it (a lookup then does not parse it again).
    footer: pq.FileMetaData | None = field(default=None, repr=False, compare=False)

    @property
    def tenant(self) -> str:
        """The tenant whose directory holds this segment (the default one for the old layout)."""
        return tenant_of_partition(posixpath.dirname(self.path))

    @property
    def num_spans(self) -> int:
        return int(self.meta["span_count"])

    def trace_ids(self) -> np.ndarray:
        """Sorted distinct trace IDs (numpy ``S16``), loaded once from the sidecar."""
        if self._trace_ids is None:
            data = self._sidecar(".tids")
            if data is not None and len(data) % 16 == 0:
                self._trace_ids = np.frombuffer(data, dtype="S16")
            else:  # written by an engine other than spanlake, or a lost sidecar: rebuild it
                ids = pq.read_table(self.path, columns=["trace_id"], filesystem=self.loc.fs)
                self._trace_ids = _sorted_ids(ids.column("trace_id"))
        return self._trace_ids

    def bloom(self) -> Bloom | None:
        """The attribute filter from the ``.bloom`` sidecar; None where there is none."""
        if not self._bloom_loaded:
            data = self._sidecar(".bloom")
            self._bloom = Bloom.from_bytes(data) if data is not None else None
            self._bloom_loaded = True
        return self._bloom

    def local_file(self, fetch: bool = True) -> str | None:
        """A local file with this segment's bytes: the segment itself on a local store; on a remote
        one the disk cache's copy (downloaded whole on first use, unless ``fetch`` is False), or
        None without a file cache."""
        if self.loc.is_local:
            return self.path
        if self.cache is None:
            return None

        def fetch_whole(dest: Path) -> None:
            download(self.loc, self.path, dest)

        file = self.cache.file(self.path, fetch_whole if fetch else None)
        return str(file) if file is not None else None

    def _fragment(self) -> ds.ParquetFileFragment:
        return _PARQUET.make_fragment(self.path, filesystem=self.loc.fs, file_size=self.size)

    def _sidecar(self, suffix: str) -> bytes | None:
        path = sidecar_path(self.path, suffix)
        return self.cache.get(path, lambda: self._fetch(path)) if self.cache else self._fetch(path)

    def _fetch(self, path: str) -> bytes | None:
        try:
            return read_object(self.loc, path)
        except FileNotFoundError:
            return None

    def may_have_tag(self, key: str, value: str) -> bool:
        """False only when no span of this segment can carry attribute ``key`` = ``value``."""
        bloom = self.bloom()
        return (bloom is None or bloom.may_contain(string_pair(key, value))
                or bloom.may_contain(typed_key(key)))

    def may_contain(self, trace_id: bytes) -> bool:
        ids = self.trace_ids()
        i = int(np.searchsorted(ids, np.bytes_(trace_id)))
        return i < len(ids) and bytes(ids[i]).ljust(16, b"\0") == trace_id

    def row_groups_for(self, trace_ids: list[bytes]) -> list[int]:
        return [i for i, (lo, hi) in enumerate(self.row_group_ranges)
                if any(lo <= t <= hi for t in trace_ids)]

    def read_traces(self, trace_ids: list[bytes]) -> pa.Table:
        """The spans of ``trace_ids`` in this segment, decoding only the row groups that hold them.

        Memory-mapped and column-parallel: ~8 ms p50 per lookup against ~12 ms single-threaded on
        the benchmark's data (``python -m bench.layout``).
        """
        groups = self.row_groups_for(trace_ids)
        if not groups:
            return STORED_SCHEMA.empty_table()
        # Locally (or from the disk cache of a remote store) memory-mapped; otherwise byte-range
        # reads of the row groups only. A lookup never downloads a whole segment: it reads one row
        # group, and lookups of random traces would pull the whole bucket through the cache.
        local = self.local_file(fetch=False)
        source = local if local is not None else self._fragment().open()
        parquet = pq.ParquetFile(source, metadata=self.footer, memory_map=local is not None)
        FOOTERS.keep(self, parquet.metadata)
        table = parquet.read_row_groups(groups, use_threads=True)
        wanted = pa.array(trace_ids, pa.binary(16))
        return table.filter(pc.is_in(table.column("trace_id"), value_set=wanted))


def partition_of(start_ns: int, tenant: str = DEFAULT_TENANT) -> str:
    """Hive partition path of the hour a span of ``tenant`` starts in."""
    hour = np.datetime64(start_ns // HOUR_NS * 3600, "s").astype(object)
    return f"{tenant_dir(tenant)}/date={hour:%Y-%m-%d}/hour={hour:%H}"


def tenant_dir(tenant: str) -> str:
    return f"tenant={check_tenant(tenant)}"


def tenant_of_partition(hour_dir: str) -> str:
    """The tenant of an ``.../[tenant=T/]date=D/hour=H`` directory (a local or bucket path)."""
    parts = hour_dir.rstrip("/").split("/")
    above = parts[-3] if len(parts) >= 3 else ""
    return above.removeprefix("tenant=") if above.startswith("tenant=") else DEFAULT_TENANT


# Hour partitions under spans/: the tenant layout, and the pre-tenant one (the default tenant's).
HOUR_GLOBS = ("tenant=*/date=*/hour=*", "date=*/hour=*")


def sidecar_path(segment_path: str, suffix: str) -> str:
    return segment_path.removesuffix(".parquet") + suffix


def write_segment(loc: Location, partition: str, name: str, spans: pa.Table,
                  meta: dict[str, Any]) -> tuple[str, int]:
    """Write ``spans`` (sorted by trace ID) as a segment with its sidecars; returns its path and the
    size of its ``.parquet`` file.

    Sidecars go first, the Parquet file last: a reader lists ``.parquet`` files only, so it never
    finds a segment whose sidecars are missing. Writing the same name twice gives the same file.
    """
    final = loc.join(SPANS_DIR, partition, f"{name}.parquet")
    ordered = spans.sort_by([("trace_id", "ascending"), ("start_time_unix_nano", "ascending")])
    description = {**describe(ordered), **meta, "format_version": FORMAT_VERSION}
    schema = STORED_SCHEMA.with_metadata({META_KEY: json.dumps(description).encode()})
    stored = ordered.drop_columns([_DERIVED]).cast(schema)
    sink = pa.BufferOutputStream()
    pq.write_table(stored, sink, compression="zstd", compression_level=ZSTD_LEVEL,
                   row_group_size=ROW_GROUP_SPANS, write_statistics=True,
                   use_dictionary=_DICTIONARY_COLUMNS, column_encoding=_DELTA_COLUMNS)
    write_object(loc, sidecar_path(final, ".tids"), _sorted_ids(ordered.column("trace_id")).tobytes())
    items = attribute_items(ordered)
    if items is not None:
        write_object(loc, sidecar_path(final, ".bloom"), Bloom.build(items).to_bytes())
    data = sink.getvalue().to_pybytes()
    write_object(loc, final, data)
    return final, len(data)


def describe(spans: pa.Table) -> dict[str, Any]:
    """Footer description of a span table: what readers prune on."""
    starts = spans.column("start_time_unix_nano")
    keys = ["service_name", "name", "kind"]
    ops = spans.select(keys).group_by(keys).aggregate([])
    return {
        "span_count": spans.num_rows,
        "trace_count": len(pc.unique(spans.column("trace_id"))),
        "min_start_ns": pc.min(starts).as_py(),
        "max_start_ns": pc.max(starts).as_py(),
        "max_end_ns": pc.max(spans.column("end_time_unix_nano")).as_py(),
        "services": sorted(pc.unique(spans.column("service_name")).to_pylist()),
        "operations": sorted(map(list, zip(*(ops.column(c).to_pylist() for c in ops.column_names),
                                           strict=True))),
    }


def with_end_time(stored: pa.Table) -> pa.Table:
    """A table read from segment files, in SPAN_SCHEMA: end time added back, columns in order."""
    if _DERIVED not in stored.column_names:
        end = pc.add(stored.column("start_time_unix_nano"), stored.column("duration_nano"))
        stored = stored.append_column(_DERIVED, end)
    return stored.select(SPAN_SCHEMA.names).cast(SPAN_SCHEMA)


def read_segment(loc: Location, path: str) -> pa.Table:
    """A whole segment in SPAN_SCHEMA."""
    return with_end_time(pq.read_table(path, filesystem=loc.fs))


def open_segment(loc: Location, path: str, size: int | None = None,
                 cache: DiskCache | None = None) -> Segment | None:
    """Read a segment's footer; None if the file is not a spanlake segment, SegmentFormatError if it is
    one this version cannot read."""
    with _PARQUET.make_fragment(path, filesystem=loc.fs, file_size=size).open() as f:
        metadata = pq.read_metadata(f)
    kv = metadata.metadata or {}
    if META_KEY not in kv:
        return None
    meta = parse_meta(path, kv[META_KEY])
    tid = metadata.schema.names.index("trace_id")
    ranges = []
    for i in range(metadata.num_row_groups):
        stats = metadata.row_group(i).column(tid).statistics
        ranges.append((bytes(stats.min), bytes(stats.max)) if stats and stats.has_min_max
                      else (b"\0" * 16, b"\xff" * 16))
    segment = Segment(loc, path, meta, ranges, size, cache)
    FOOTERS.keep(segment, metadata)
    return segment


def segments_dataset(segments: list[Segment]) -> ds.Dataset:
    """An Arrow dataset over ``segments`` (at least one), in ``STORED_SCHEMA``, for DuckDB.

    Locally ``ds.dataset`` checks that every file exists (a vanished one raises FileNotFoundError,
    which the SQL engine retries on); on S3 the fragments carry the sizes the listing gave, so
    opening one costs no extra request.
    """
    loc = segments[0].loc
    if loc.is_local:
        return ds.dataset([s.path for s in segments], schema=STORED_SCHEMA, format="parquet")
    fragments = [s._fragment() for s in segments]
    return ds.FileSystemDataset(fragments, STORED_SCHEMA, _PARQUET, loc.fs)


def local_files(segments: list[Segment]) -> list[str] | None:
    """Local files of ``segments`` (see ``Segment.local_file``), or None if one has none, or if on
    a remote store they would fill more than half its disk cache (a query over the whole bucket is
    better read by byte ranges than by evicting what it has just downloaded)."""
    remote = [s for s in segments if not s.loc.is_local]
    if remote:
        cache = remote[0].cache
        if cache is None or sum(s.size or 0 for s in remote) > cache.max_bytes // 2:
            return None
    files = []
    for seg in segments:
        file = seg.local_file()
        if file is None:
            return None
        files.append(file)
    return files


def parquet_scan_sql(files: list[str]) -> str:
    """DuckDB's own Parquet reader over exactly these local segment files (at least one), as SQL.

    DuckDB's reader is its fastest path on local files (a pyarrow dataset is scanned through the
    Arrow stream interface instead). The paths are ours, never user input; ``hive_partitioning``
    is off because the ``tenant=``/``date=``/``hour=`` directories are not span columns."""
    listed = ", ".join(sql_string(f) for f in files)
    return f"read_parquet([{listed}], hive_partitioning = false)"


def sql_string(text: str) -> str:
    """``text`` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def list_segment_files(loc: Location) -> dict[str, int]:
    """Every committed segment file under the store and its size, oldest partition first."""
    return {i.path: i.size for i in sorted(list_files(loc, SPANS_DIR), key=lambda i: i.path)
            if _is_segment(loc.relative(i.path)) and not i.base_name.startswith(".")}


def list_segment_paths(loc: Location) -> list[str]:
    """Every committed segment file under the store, oldest partition first."""
    return list(list_segment_files(loc))


def remove_debris(loc: Location, writer: str) -> None:
    """Delete what a crash of ``writer`` can leave: temporary files and its sidecars without a segment.

    Only this writer's: in a shared bucket, another writer's sidecars may be waiting for their
    segment, which it uploads last.
    """
    files = set(_spans_files(loc))
    debris = [p for p in files if p.endswith(".tmp") and p.rsplit("/", 1)[-1].startswith(f".{writer}-")]
    for p in files:
        name = p.rsplit("/", 1)[-1]
        if name.startswith(f"{writer}-") and p.endswith(SIDECARS) and \
                p.rsplit(".", 1)[0] + ".parquet" not in files:
            debris.append(p)
    delete_files(loc, debris)


def delete_segment(loc: Location, path: str) -> None:
    """The segment first, its sidecars after: a reader never lists a segment without sidecars."""
    delete_files(loc, [path, *(sidecar_path(path, s) for s in SIDECARS)])


_SEGMENT_GLOBS = tuple(f"{SPANS_DIR}/{pattern}/*.parquet" for pattern in HOUR_GLOBS)


def _is_segment(relative: str) -> bool:
    return any(fnmatch.fnmatch(relative, glob) for glob in _SEGMENT_GLOBS)


_PARQUET = ds.ParquetFileFormat()


def _spans_files(loc: Location) -> list[str]:
    return [i.path for i in list_files(loc, SPANS_DIR)]


def _sorted_ids(ids: pa.ChunkedArray | pa.Array) -> np.ndarray:
    raw = pc.unique(ids).to_numpy(zero_copy_only=False).astype("S16")
    return np.sort(raw)
