"""The peer: ClickHouse (in-process, via chDB) with the OpenTelemetry Collector clickhouseexporter schema.

Tables follow the exporter's ``otel_traces`` (span-per-row, string IDs, attribute Maps, Nested events
and links, partitioned by day, ordered by service, span name and time, bloom filters on trace ID and
attribute keys/values) and its ``otel_traces_trace_id_ts`` lookup table fed by a materialized view
(trace ID -> first/last timestamp), which is how Jaeger-ClickHouse, SigNoz and Grafana's ClickHouse
plugin find a trace without a time range. The DDL below is written from those facts.

chDB runs inside whatever process imports it, so the harness runs this module as a child process
(``python -m bench.peer_clickhouse``) and measures that process's CPU and RSS from /proc. The child
prints ``PHASE <name>`` lines so the parent knows which phase each sample belongs to.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import multiprocessing
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sized
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pyarrow as pa
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from bench import measure, procstat, wire
from bench.generate import Manifest

DB = "otel"
INSERT_BATCH_SPANS = 100_000  # ClickHouse wants few, large inserts; the exporter's batches are smaller

TRACES_DDL = f"""
CREATE TABLE {DB}.otel_traces (
    Timestamp DateTime64(9) CODEC(Delta, ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    ParentSpanId String CODEC(ZSTD(1)),
    TraceState String CODEC(ZSTD(1)),
    SpanName LowCardinality(String) CODEC(ZSTD(1)),
    SpanKind LowCardinality(String) CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    ResourceAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ScopeName String CODEC(ZSTD(1)),
    ScopeVersion String CODEC(ZSTD(1)),
    SpanAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    Duration UInt64 CODEC(ZSTD(1)),
    StatusCode LowCardinality(String) CODEC(ZSTD(1)),
    StatusMessage String CODEC(ZSTD(1)),
    Events Nested (
        Timestamp DateTime64(9),
        Name LowCardinality(String),
        Attributes Map(LowCardinality(String), String)
    ) CODEC(ZSTD(1)),
    Links Nested (
        TraceId String,
        SpanId String,
        TraceState String,
        Attributes Map(LowCardinality(String), String)
    ) CODEC(ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_span_attr_key mapKeys(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_span_attr_value mapValues(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_duration Duration TYPE minmax GRANULARITY 1
) ENGINE = MergeTree
PARTITION BY toDate(Timestamp)
ORDER BY (ServiceName, SpanName, toDateTime(Timestamp))
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1
"""

LOOKUP_DDL = f"""
CREATE TABLE {DB}.otel_traces_trace_id_ts (
    TraceId String CODEC(ZSTD(1)),
    Start DateTime CODEC(Delta, ZSTD(1)),
    End DateTime CODEC(Delta, ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.01) GRANULARITY 1
) ENGINE = MergeTree
PARTITION BY toDate(Start)
ORDER BY (TraceId, Start)
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1
"""

LOOKUP_MV_DDL = f"""
CREATE MATERIALIZED VIEW {DB}.otel_traces_trace_id_ts_mv TO {DB}.otel_traces_trace_id_ts AS
SELECT TraceId, min(Timestamp) AS Start, max(Timestamp) AS End
FROM {DB}.otel_traces WHERE TraceId != '' GROUP BY TraceId
"""

# The exporter writes kind and status as the names the collector's traceutil gives them.
KIND_NAMES = ["Unspecified", "Internal", "Server", "Client", "Producer", "Consumer"]
STATUS_NAMES = ["Unset", "Ok", "Error"]

ATTR_MAP = pa.map_(pa.string(), pa.string())
COLUMN_TYPES: dict[str, pa.DataType] = {
    "Timestamp": pa.timestamp("ns"),
    "TraceId": pa.string(),
    "SpanId": pa.string(),
    "ParentSpanId": pa.string(),
    "TraceState": pa.string(),
    "SpanName": pa.string(),
    "SpanKind": pa.string(),
    "ServiceName": pa.string(),
    "ResourceAttributes": ATTR_MAP,
    "ScopeName": pa.string(),
    "ScopeVersion": pa.string(),
    "SpanAttributes": ATTR_MAP,
    "Duration": pa.uint64(),
    "StatusCode": pa.string(),
    "StatusMessage": pa.string(),
    "Events.Timestamp": pa.list_(pa.timestamp("ns")),
    "Events.Name": pa.list_(pa.string()),
    "Events.Attributes": pa.list_(ATTR_MAP),
    "Links.TraceId": pa.list_(pa.string()),
    "Links.SpanId": pa.list_(pa.string()),
    "Links.TraceState": pa.list_(pa.string()),
    "Links.Attributes": pa.list_(ATTR_MAP),
}


def as_string(value: AnyValue) -> str:
    """The exporter stores every attribute value as text (AsString): strings as is, others formatted."""
    which = value.WhichOneof("value")
    if which == "string_value":
        return value.string_value
    if which is None:
        return ""
    return str(getattr(value, which)).lower() if which == "bool_value" else str(getattr(value, which))


def attributes(kvs: Any) -> list[tuple[str, str]]:
    # Most values are strings: read string_value first, fall back to the general case when it is empty.
    return [(kv.key, kv.value.string_value or as_string(kv.value)) for kv in kvs]


def append_request(payload: bytes, cols: dict[str, list[Any]]) -> None:
    """Decode one ExportTraceServiceRequest into the exporter's columns (what the collector does)."""
    for rs in ExportTraceServiceRequest.FromString(payload).resource_spans:
        resource = attributes(rs.resource.attributes)
        service = next((v for k, v in resource if k == "service.name"), "")
        for ss in rs.scope_spans:
            for span in ss.spans:
                cols["Timestamp"].append(span.start_time_unix_nano)
                cols["TraceId"].append(span.trace_id.hex())
                cols["SpanId"].append(span.span_id.hex())
                cols["ParentSpanId"].append(span.parent_span_id.hex())
                cols["TraceState"].append(span.trace_state)
                cols["SpanName"].append(span.name)
                cols["SpanKind"].append(KIND_NAMES[span.kind])
                cols["ServiceName"].append(service)
                cols["ResourceAttributes"].append(resource)
                cols["ScopeName"].append(ss.scope.name)
                cols["ScopeVersion"].append(ss.scope.version)
                cols["SpanAttributes"].append(attributes(span.attributes))
                cols["Duration"].append(span.end_time_unix_nano - span.start_time_unix_nano)
                cols["StatusCode"].append(STATUS_NAMES[span.status.code])
                cols["StatusMessage"].append(span.status.message)
                cols["Events.Timestamp"].append([e.time_unix_nano for e in span.events])
                cols["Events.Name"].append([e.name for e in span.events])
                cols["Events.Attributes"].append([attributes(e.attributes) for e in span.events])
                cols["Links.TraceId"].append([link.trace_id.hex() for link in span.links])
                cols["Links.SpanId"].append([link.span_id.hex() for link in span.links])
                cols["Links.TraceState"].append([link.trace_state for link in span.links])
                cols["Links.Attributes"].append([attributes(link.attributes) for link in span.links])


def record_batches(path: Path, spans_per_batch: int) -> list[tuple[int, int, int]]:
    """(file offset, request count, span count) of consecutive runs of about ``spans_per_batch`` spans."""
    batches, offset, first, requests, spans = [], 0, 0, 0, 0
    with path.open("rb") as handle:
        while header := handle.read(wire.RECORD_HEADER.size):
            size, count = wire.RECORD_HEADER.unpack(header)
            handle.seek(size, 1)
            offset += wire.RECORD_HEADER.size + size
            requests, spans = requests + 1, spans + count
            if spans >= spans_per_batch:
                batches.append((first, requests, spans))
                first, requests, spans = offset, 0, 0
    if requests:
        batches.append((first, requests, spans))
    return batches


def decode_batch(path: str, offset: int, requests: int) -> tuple[bytes, float]:
    """Worker: decode ``requests`` requests from ``offset`` into one Arrow IPC stream; its CPU seconds."""
    cpu = time.process_time()
    cols: dict[str, list[Any]] = {name: [] for name in COLUMN_TYPES}
    with open(path, "rb") as handle:
        handle.seek(offset)
        for _ in range(requests):
            size, _count = wire.RECORD_HEADER.unpack(handle.read(wire.RECORD_HEADER.size))
            append_request(handle.read(size), cols)
    table = pa.table({k: pa.array(v, COLUMN_TYPES[k]) for k, v in cols.items()})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes(), time.process_time() - cpu


def decoded_batches(path: Path, workers: int = 2) -> Iterator[tuple[pa.Table, int, float]]:
    """Arrow tables of about INSERT_BATCH_SPANS spans, their span counts and the CPU spent decoding.

    Decoding runs in worker processes, so the process that hosts ClickHouse spends its CPU on
    ClickHouse's work only, as a database server fed by a collector would.
    """
    batches = record_batches(path, INSERT_BATCH_SPANS)
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers) as pool:
        jobs = [pool.apply_async(decode_batch, (str(path), offset, n)) for offset, n, _ in batches]
        for job, (_, _, spans) in zip(jobs, batches, strict=True):
            payload, cpu = job.get()
            yield pa.ipc.open_stream(payload).read_all(), spans, cpu


class Peer:
    """A chDB session holding the exporter's tables, and the queries a Jaeger/Grafana backend sends."""

    def __init__(self, path: Path) -> None:
        # Imported here, untyped: only the child process loads ClickHouse.
        chdb_session: Any = importlib.import_module("chdb.session")
        self.session: Any = chdb_session.Session(str(path))
        self.session.query(f"CREATE DATABASE IF NOT EXISTS {DB}")
        for ddl in (TRACES_DDL, LOOKUP_DDL, LOOKUP_MV_DDL):
            self.session.query(ddl)

    def sql(self, query: str) -> list[list[Any]]:
        result = self.session.query(query, "JSONCompact")
        if result.has_error():
            raise RuntimeError(result.error_message())
        text = result.bytes()
        return json.loads(text)["data"] if text else []

    def insert(self, table: pa.Table) -> None:
        # chDB's Python() table function reads the Arrow table named in the query from this frame.
        batch = table  # noqa: F841
        self.session.query(f"INSERT INTO {DB}.otel_traces SELECT * FROM Python(batch)")

    def storage(self) -> dict[str, int]:
        for table in ("otel_traces", "otel_traces_trace_id_ts"):
            self.session.query(f"OPTIMIZE TABLE {DB}.{table} FINAL")
        rows = self.sql(
            f"SELECT table, sum(bytes_on_disk), sum(rows) FROM system.parts "
            f"WHERE database = '{DB}' AND active GROUP BY table"
        )
        return {str(r[0]): int(r[1]) for r in rows}

    def trace(self, trace_id: str) -> list[list[Any]]:
        """All spans of one trace with no time range given: bound it with the lookup table first."""
        return self.sql(
            f"WITH '{trace_id}' AS tid, "
            f"(SELECT min(Start) FROM {DB}.otel_traces_trace_id_ts WHERE TraceId = tid) AS lo, "
            f"(SELECT max(End) + 1 FROM {DB}.otel_traces_trace_id_ts WHERE TraceId = tid) AS hi "
            f"SELECT * FROM {DB}.otel_traces WHERE TraceId = tid AND Timestamp >= lo AND Timestamp <= hi"
        )

    def find_traces(self, where: str, start_ns: int, end_ns: int, limit: int = 20) -> set[str]:
        """Jaeger's FindTraces: newest matching trace IDs, then every span of those traces."""
        ids = self.sql(
            f"SELECT TraceId FROM {DB}.otel_traces WHERE {where} "
            f"AND Timestamp >= fromUnixTimestamp64Nano({start_ns}) "
            f"AND Timestamp <= fromUnixTimestamp64Nano({end_ns}) "
            f"GROUP BY TraceId ORDER BY max(Timestamp) DESC LIMIT {limit}"
        )
        if not ids:
            return set()
        id_list = ", ".join(f"'{row[0]}'" for row in ids)
        spans = self.sql(
            f"WITH (SELECT min(Start) FROM {DB}.otel_traces_trace_id_ts WHERE TraceId IN ({id_list})) AS lo, "
            f"(SELECT max(End) + 1 FROM {DB}.otel_traces_trace_id_ts WHERE TraceId IN ({id_list})) AS hi "
            f"SELECT * FROM {DB}.otel_traces WHERE TraceId IN ({id_list}) "
            f"AND Timestamp >= lo AND Timestamp <= hi"
        )
        return {row[1] for row in spans}

    def rate_by_service(self, start_ns: int, end_ns: int) -> list[list[Any]]:
        """``{ } | rate() by (resource.service.name)`` with a 60 s step: one row per service."""
        return self.sql(
            f"SELECT ServiceName, groupArray((t, c)) FROM (SELECT ServiceName, "
            f"toStartOfMinute(Timestamp) AS t, count() / 60 AS c FROM {DB}.otel_traces "
            f"WHERE Timestamp >= fromUnixTimestamp64Nano({start_ns}) "
            f"AND Timestamp <= fromUnixTimestamp64Nano({end_ns}) "
            f"GROUP BY ServiceName, t) GROUP BY ServiceName"
        )

    def percentiles(self, start_ns: int, end_ns: int) -> list[list[Any]]:
        return self.sql(
            f"SELECT ServiceName, SpanName, quantile(0.5)(Duration), quantile(0.99)(Duration), count() "
            f"FROM {DB}.otel_traces WHERE Timestamp >= fromUnixTimestamp64Nano({start_ns}) "
            f"AND Timestamp <= fromUnixTimestamp64Nano({end_ns}) "
            f"GROUP BY ServiceName, SpanName ORDER BY ServiceName, SpanName"
        )


def phase(name: str) -> None:
    print(f"PHASE {name}", flush=True)


def ingest(peer: Peer, manifest: Manifest, result: measure.Result) -> None:
    """Insert the decoded batches; the parent takes this process's CPU for the phase from /proc."""
    decode_cpu = insert_wall = 0.0
    for table, spans, cpu in decoded_batches(Path(manifest.requests_file)):
        decode_cpu += cpu
        began = time.perf_counter()
        peer.insert(table)
        insert_wall += time.perf_counter() - began
        result.spans += spans
    result.ingest_wall_s = insert_wall
    result.extra["decode_cpu_s"] = decode_cpu
    result.notes.append(
        "peer ingest = ClickHouse's INSERTs of Arrow batches of 100k spans: spans/s over the time spent "
        "inside INSERT, CPU of the chDB process for the whole ingest phase (background merges included); "
        f"decoding OTLP into columns, the collector's job, ran in worker processes ({decode_cpu:.1f} CPU-s "
        "in Python) and is not counted"
    )


def queries(peer: Peer, manifest: Manifest, result: measure.Result) -> None:
    q, lo, hi = manifest.searches, manifest.start_ns, manifest.end_ns
    hit_times, miss_times, found = [], [], 0
    for trace_id in manifest.existing_trace_ids:
        times, rows = measure.timed(functools.partial(peer.trace, trace_id), 1)
        hit_times += times
        found += len(rows) == 10
    for trace_id in manifest.absent_trace_ids:
        miss_times += measure.timed(functools.partial(peer.trace, trace_id), 1)[0]
    result.by_id_found = found
    for name, times in (("hit", hit_times), ("miss", miss_times)):
        result.by_id_ms[f"{name}_p50"] = measure.ms_percentile(times, 50)
        result.by_id_ms[f"{name}_p99"] = measure.ms_percentile(times, 99)
    searches: dict[str, Callable[[], Sized]] = {
        "service_operation": lambda: peer.find_traces(
            f"ServiceName = '{q.service}' AND SpanName = '{q.operation}'", q.recent_start_ns, hi
        ),
        "attribute": lambda: peer.find_traces(
            f"(SpanAttributes['{q.attr_key}'] = '{q.attr_value}' "
            f"OR ResourceAttributes['{q.attr_key}'] = '{q.attr_value}')",
            lo,
            hi,
        ),
        "no_match": lambda: peer.find_traces(
            f"ServiceName = '{q.nomatch_service}' "
            f"AND SpanAttributes['{q.nomatch_key}'] = '{q.nomatch_value}'",
            lo,
            hi,
        ),
        "slow": lambda: peer.find_traces(
            f"ServiceName = '{q.slow_service}' AND Duration > {q.slow_threshold_ns}", lo, hi
        ),
        "percentiles": lambda: peer.percentiles(lo, hi),
        # The TraceQL rows' questions in SQL (the structural one is not asked: see measure.SEARCHES).
        "traceql_service_name": lambda: peer.find_traces(
            f"ServiceName = '{q.service}' AND SpanName = '{q.operation}'", q.recent_start_ns, hi
        ),
        "traceql_attribute": lambda: peer.find_traces(
            f"SpanAttributes['{q.attr_key}'] = '{q.attr_value}'", lo, hi
        ),
        "traceql_duration": lambda: peer.find_traces("Duration > 1000000000", lo, hi),
        "traceql_rate": lambda: peer.rate_by_service(lo, hi),
    }
    for key, call in searches.items():
        times, answer = measure.timed(call, measure.SEARCH_RUNS)
        result.searches_ms[key] = measure.ms_percentile(times, 50)
        result.searches_found[key] = len(answer)


def child(manifest_path: Path, data_dir: Path, out: Path) -> None:
    import chdb

    manifest = Manifest.load(manifest_path)
    peer = Peer(data_dir)
    version = peer.sql("SELECT version()")[0][0]
    result = measure.Result(
        engine="ClickHouse (chDB)", version=f"chdb {chdb.__version__}, ClickHouse {version}"
    )
    phase("ingest")
    ingest(peer, manifest, result)
    phase("storage")
    parts = peer.storage()
    result.storage_bytes = sum(parts.values())
    result.extra.update({f"bytes_{table}": size for table, size in parts.items()})
    result.notes.append(
        "peer bytes/span = otel_traces + otel_traces_trace_id_ts after OPTIMIZE FINAL "
        f"({parts.get('otel_traces', 0) / max(result.spans, 1):.1f} + "
        f"{parts.get('otel_traces_trace_id_ts', 0) / max(result.spans, 1):.1f})"
    )
    phase("searches")
    queries(peer, manifest, result)
    phase("done")
    out.write_text(json.dumps(asdict(result)))


def run(manifest_path: Path, work_dir: Path) -> measure.Result:
    """Run the peer in a child process; its CPU and RSS are measured from here, per phase."""
    data_dir, out = work_dir / "chdb", work_dir / "peer-result.json"
    work_dir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "bench.peer_clickhouse", str(manifest_path), str(data_dir), str(out)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    monitor = procstat.Monitor(proc.pid).start()
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("PHASE "):
            monitor.phase(line.split()[1])
        else:
            print(line, end="", file=sys.stderr)
    phases = monitor.stop()
    if proc.wait() != 0:
        raise RuntimeError(f"the ClickHouse peer failed (exit {proc.returncode}); see its output above")
    result = measure.Result(**json.loads(out.read_text()))
    result.ingest_cpu_s = phases["ingest"].cpu
    result.ingest_peak_rss = phases["ingest"].peak_rss
    result.search_peak_rss = phases["searches"].peak_rss
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description="child process: load and query the ClickHouse peer")
    parser.add_argument("manifest", type=Path)
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    child(args.manifest, args.data_dir, args.out)


if __name__ == "__main__":
    main()
