"""spanlake's side of the benchmark: ``spanlake serve`` as a subprocess, fed and queried over its APIs.

Ingest: a separate load process pushes the generated requests over OTLP gRPC on a few concurrent
streams and counts only acknowledged spans (the store acks once spans are durable). Server CPU comes from
/proc/<pid>/stat; the phase ends when the server goes idle after the last ack, so the flush of the
acknowledged tail into Parquet is counted too. Then the server stops (flushing), segments are compacted,
their bytes counted, and a fresh server answers the queries over HTTP.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import measure, procstat, wire
from bench.generate import Manifest

EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
LOAD_STREAMS = 4
RETRYABLE = ("RESOURCE_EXHAUSTED", "UNAVAILABLE")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- the load process -------------------------------------------------------------------------


def load(target: str, requests_file: Path, streams: int) -> dict[str, Any]:
    """Send every request over ``streams`` concurrent gRPC calls; retry on backpressure."""
    import grpc
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

    channel = grpc.insecure_channel(target, options=[("grpc.max_send_message_length", 64 << 20)])
    export = channel.unary_unary(EXPORT_METHOD, response_deserializer=ExportTraceServiceResponse.FromString)
    records = wire.read_records(requests_file)
    lock = threading.Lock()
    totals = {"acked": 0, "rejected": 0, "retries": 0, "errors": 0}

    def next_record() -> tuple[bytes, int] | None:
        with lock:
            return next(records, None)

    def stream() -> None:
        while (record := next_record()) is not None:
            payload, spans = record
            for attempt in range(100):
                try:
                    response = export(payload, timeout=60)
                except grpc.RpcError as exc:
                    if exc.code().name in RETRYABLE and attempt < 99:
                        with lock:
                            totals["retries"] += 1
                        time.sleep(min(0.05 * 2**attempt, 1.0))
                        continue
                    with lock:
                        totals["errors"] += 1
                    break
                rejected = response.partial_success.rejected_spans
                with lock:
                    totals["acked"] += spans - rejected
                    totals["rejected"] += rejected
                break

    began = time.perf_counter()
    threads = [threading.Thread(target=stream) for _ in range(streams)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {**totals, "wall_s": time.perf_counter() - began}


# --- the server -------------------------------------------------------------------------------


class Server:
    """``spanlake serve`` on a data directory with only the listeners the benchmark uses."""

    def __init__(self, data_dir: Path, log_path: Path, extra_args: tuple[str, ...] = (),
                 env: dict[str, str] | None = None) -> None:
        self.grpc_port, self.http_port, self.query_port = free_port(), free_port(), free_port()
        command = [
            sys.executable, "-m", "spanlake", "serve", "--data-dir", str(data_dir), "--host", "127.0.0.1",
            "--otlp-grpc-port", str(self.grpc_port), "--otlp-http-port", str(self.http_port),
            "--query-port", str(self.query_port), "--log-level", "warning",
        ]  # fmt: skip
        # Port 0 turns a receiver off (serve skips falsy ports), so the others do not compete.
        for flag in ("--jaeger-grpc-port", "--jaeger-http-port", "--jaeger-compact-port",
                     "--jaeger-binary-port", "--sampling-port", "--zipkin-port", "--admin-port"):  # fmt: skip
            command += [flag, "0"]
        command += extra_args
        # A query-only node opens no OTLP port: readiness is then the query port alone.
        roles = extra_args[extra_args.index("--roles") + 1] if "--roles" in extra_args else "collector"
        self.ingests = "collector" in roles
        self.log = log_path.open("ab")
        self.proc = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT,
                                     env={**os.environ, **(env or {})})
        self.base = f"http://127.0.0.1:{self.query_port}"
        self._wait_ready()

    # Long enough for a 100M-span store to open (bench.scaling); a server that dies fails at once.
    def _wait_ready(self, timeout: float = 600.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"spanlake serve exited with {self.proc.returncode}; see {self.log.name}")
            try:
                with urllib.request.urlopen(f"{self.base}/api/services", timeout=2):
                    pass
                if not self.ingests:
                    return
                with socket.create_connection(("127.0.0.1", self.grpc_port), timeout=2):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("spanlake serve did not become ready")

    def get(self, path: str, params: dict[str, str] | None = None) -> tuple[int, Any]:
        url = self.base + path + ("?" + urllib.parse.urlencode(params) if params else "")
        try:
            with urllib.request.urlopen(url, timeout=120) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def post_json(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        request = urllib.request.Request(
            self.base + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def stop(self, timeout: float = 120.0) -> str | None:
        """SIGTERM and wait for the graceful stop (which flushes); returns a problem worth noting."""
        self.proc.send_signal(signal.SIGTERM)
        problem = None
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            # A stop that hangs must not hang the benchmark; the WAL keeps every acked span, and
            # `spanlake compact` replays it before merging.
            self.proc.kill()
            self.proc.wait()
            problem = f"spanlake serve did not stop within {timeout:.0f} s of SIGTERM and was killed"
        finally:
            self.log.close()
        if problem is None and self.proc.returncode != 0:
            problem = f"spanlake serve stopped with exit code {self.proc.returncode}"
        return problem


def wait_idle(pid: int, quiet_cpu_s: float = 0.05, interval: float = 1.0, timeout: float = 120.0) -> None:
    """Until the process uses less than ``quiet_cpu_s`` CPU in ``interval``: its flush is done."""
    deadline = time.monotonic() + timeout
    last = procstat.cpu_seconds(pid)
    while time.monotonic() < deadline:
        time.sleep(interval)
        now = procstat.cpu_seconds(pid)
        if now - last < quiet_cpu_s:
            return
        last = now


def segment_bytes(data_dir: Path, pattern: str = "*") -> int:
    """Bytes of the committed store: segments and their sidecars (trace-ID index...), not the WAL."""
    return sum(path.stat().st_size for path in (data_dir / "spans").rglob(pattern) if path.is_file())


def compact(data_dir: Path, notes: list[str]) -> None:
    """``spanlake compact`` when the CLI has it; otherwise the store's own compaction, in process."""
    probe = subprocess.run([sys.executable, "-m", "spanlake", "compact", "--help"], capture_output=True)
    if probe.returncode == 0:
        done = subprocess.run(
            [sys.executable, "-m", "spanlake", "compact", "--data-dir", str(data_dir)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        notes.append(f"`spanlake compact`: {done.stdout.strip()}")
        return
    from spanlake.storage.store import SegmentStore

    store = SegmentStore(data_dir)
    try:
        result = store.compact()
    finally:
        store.close()
    notes.append(
        f"compacted with SegmentStore.compact() (no `spanlake compact` CLI yet): "
        f"{result.inputs} segments -> {result.outputs}"
    )


# --- the queries ------------------------------------------------------------------------------


def by_id(server: Server, trace_id: str) -> int:
    """Spans returned for one trace ID (0 when not found)."""
    status, body = server.get(f"/api/traces/{trace_id}")
    if status == 404:
        return 0
    if status != 200:
        raise RuntimeError(f"GET /api/traces/{trace_id}: HTTP {status}: {body!r}")
    return sum(len(trace["spans"]) for trace in body["data"])


def search(server: Server, params: dict[str, str]) -> list[Any]:
    status, body = server.get("/api/traces", params)
    if status != 200:
        raise RuntimeError(f"GET /api/traces?{urllib.parse.urlencode(params)}: HTTP {status}: {body!r}")
    return body["data"]  # type: ignore[no-any-return]


PERCENTILES_SQL = (
    "SELECT service_name, name, quantile_cont(duration_nano, 0.5) AS p50, "
    "quantile_cont(duration_nano, 0.99) AS p99, count(*) AS spans FROM spans "
    "WHERE start_time_unix_nano >= {lo} AND start_time_unix_nano <= {hi} "
    "GROUP BY service_name, name ORDER BY service_name, name"
)


def sql(server: Server, query: str) -> list[Any]:
    status, body = server.post_json("/api/sql", {"query": query})
    if status != 200:
        raise RuntimeError(f"POST /api/sql: HTTP {status}: {body!r}")
    return body["rows"]  # type: ignore[no-any-return]


def tempo(server: Server, path: str, params: dict[str, str], field: str) -> list[Any]:
    status, body = server.get(f"/tempo/api/{path}", params)
    if status != 200:
        raise RuntimeError(f"GET /tempo/api/{path}?{urllib.parse.urlencode(params)}: HTTP {status}: {body!r}")
    return body[field]  # type: ignore[no-any-return]


def traceql_calls(server: Server, manifest: Manifest) -> dict[str, Callable[[], list[Any]]]:
    q, s = manifest.searches, 10**9
    hour = {"start": str(manifest.start_ns // s), "end": str(manifest.end_ns // s + 1), "limit": "20"}
    recent = {**hour, "start": str(q.recent_start_ns // s)}

    def search(params: dict[str, str], query: str) -> Callable[[], list[Any]]:
        return functools.partial(tempo, server, "search", {**params, "q": query}, "traces")

    rate = {"start": hour["start"], "end": hour["end"], "step": "60s",
            "q": "{ } | rate() by (resource.service.name)"}
    structural = f'{{ resource.service.name = "{q.service}" }} >> {{ status = error }}'
    return {
        "traceql_service_name": search(
            recent, f'{{ resource.service.name = "{q.service}" && name = "{q.operation}" }}'),
        "traceql_attribute": search(hour, f'{{ span.{q.attr_key} = "{q.attr_value}" }}'),
        "traceql_duration": search(hour, "{ duration > 1s }"),
        "traceql_structural": search(hour, structural),
        "traceql_rate": functools.partial(tempo, server, "metrics/query_range", rate, "series"),
    }  # fmt: skip


def search_calls(server: Server, manifest: Manifest) -> dict[str, Callable[[], list[Any]]]:
    q, us = manifest.searches, 1000
    hour = {"start": str(manifest.start_ns // us), "end": str(manifest.end_ns // us + 1)}
    return {
        **traceql_calls(server, manifest),
        "service_operation": functools.partial(search, server, {
            "service": q.service, "operation": q.operation, "limit": "20",
            "start": str(q.recent_start_ns // us), "end": hour["end"]}),
        "attribute": functools.partial(search, server, {
            "tags": json.dumps({q.attr_key: q.attr_value}), "limit": "20", **hour}),
        "no_match": functools.partial(search, server, {
            "service": q.nomatch_service, "tags": json.dumps({q.nomatch_key: q.nomatch_value}),
            "limit": "20", **hour}),
        "slow": functools.partial(search, server, {
            "service": q.slow_service, "minDuration": f"{q.slow_threshold_ns + 1}ns", "limit": "20", **hour}),
        "percentiles": functools.partial(
            sql, server, PERCENTILES_SQL.format(lo=manifest.start_ns, hi=manifest.end_ns)),
    }  # fmt: skip


def run_queries(server: Server, manifest: Manifest, result: measure.Result) -> None:
    hit_times, miss_times, found = [], [], 0
    for trace_id in manifest.existing_trace_ids:
        times, spans = measure.timed(functools.partial(by_id, server, trace_id), 1)
        hit_times += times
        found += spans == 10
    for trace_id in manifest.absent_trace_ids:
        miss_times += measure.timed(functools.partial(by_id, server, trace_id), 1)[0]
    result.by_id_found = found
    for name, times in (("hit", hit_times), ("miss", miss_times)):
        result.by_id_ms[f"{name}_p50"] = measure.ms_percentile(times, 50)
        result.by_id_ms[f"{name}_p99"] = measure.ms_percentile(times, 99)
    for key, call in search_calls(server, manifest).items():
        try:
            times, answer = measure.timed(call, measure.SEARCH_RUNS)
        except RuntimeError as exc:
            result.notes.append(f"{key}: not measured ({str(exc)[:200]})")
            continue
        result.searches_ms[key] = measure.ms_percentile(times, 50)
        result.searches_found[key] = len(answer)


# --- the whole side ---------------------------------------------------------------------------


def spanlake_version() -> str:
    """Package version and commit; "+uncommitted changes" when the measured code differs from it."""
    from importlib.metadata import version

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown commit"
    if git(
        "status", "--porcelain", "--untracked-files=no", "--", "collector", "storage", "query", "spanlake"
    ):
        commit += " + uncommitted changes"
    return f"spanlake {version('spanlake')} ({commit})"


def ingest(server: Server, manifest: Manifest, work_dir: Path, result: measure.Result) -> None:
    monitor = procstat.Monitor(server.proc.pid).start()
    monitor.phase("ingest")
    command = [sys.executable, "-m", "bench.spanlake_side", "load", f"127.0.0.1:{server.grpc_port}",
               manifest.requests_file, "--streams", str(LOAD_STREAMS)]  # fmt: skip
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    stats = json.loads(out.stdout)
    wait_idle(server.proc.pid)
    phases = monitor.stop()
    result.spans = stats["acked"]
    result.ingest_wall_s = stats["wall_s"]
    result.ingest_cpu_s = phases["ingest"].cpu
    result.ingest_peak_rss = phases["ingest"].peak_rss
    result.extra.update({f"load_{k}": float(v) for k, v in stats.items()})
    result.extra["ingest_until_idle_s"] = phases["ingest"].wall
    if stats["acked"] != manifest.spans:
        result.notes.append(f"only {stats['acked']} of {manifest.spans} spans acknowledged: {stats}")


def note(result: measure.Result, problem: str | None) -> None:
    if problem:
        result.notes.append(problem)


def restart_to_ready(data_dir: Path, log_path: Path, manifest: Manifest, result: measure.Result) -> None:
    """Seconds from starting ``spanlake serve`` on the compacted store until it answers and its first
    trace-by-ID lookup returns: what a user waits after a restart. Measured on a start of its own,
    after the queries, so the timed lookups are taken as before (the first of them still cold)."""
    began = time.perf_counter()
    try:
        server = Server(data_dir, log_path)
    except RuntimeError as exc:  # keep what was measured already; say why this is missing
        result.notes.append(f"restart to ready: not measured ({exc})")
        return
    result.extra["restart_serving_s"] = time.perf_counter() - began  # its ports answer
    try:
        spans = by_id(server, manifest.existing_trace_ids[-1])
        result.extra["restart_to_ready_s"] = time.perf_counter() - began
        if spans != 10:
            result.notes.append(f"restart: the first trace-by-ID lookup returned {spans} spans, not 10")
    finally:
        note(result, server.stop())


def run(manifest_path: Path, work_dir: Path) -> measure.Result:
    manifest = Manifest.load(manifest_path)
    data_dir = work_dir / "spanlake-data"
    shutil.rmtree(data_dir, ignore_errors=True)
    work_dir.mkdir(parents=True, exist_ok=True)
    log_path = work_dir / "spanlake-serve.log"
    result = measure.Result(engine="spanlake", version=spanlake_version())
    server = Server(data_dir, log_path)
    try:
        ingest(server, manifest, work_dir, result)
    finally:
        note(result, server.stop())
    result.extra["bytes_before_compaction"] = segment_bytes(data_dir)
    compact(data_dir, result.notes)
    result.storage_bytes = segment_bytes(data_dir)
    result.extra["bytes_parquet"] = segment_bytes(data_dir, "*.parquet")
    result.extra["bytes_wal"] = sum(p.stat().st_size for p in (data_dir / "wal").rglob("*") if p.is_file())
    result.notes.append(
        "spanlake bytes/span = every file under spans/ (Parquet segments and their trace-ID index sidecars) "
        "after compaction"
    )
    server = Server(data_dir, log_path)
    try:
        monitor = procstat.Monitor(server.proc.pid).start()
        monitor.phase("searches")
        run_queries(server, manifest, result)
        result.search_peak_rss = monitor.stop()["searches"].peak_rss
    finally:
        note(result, server.stop())
    restart_to_ready(data_dir, log_path, manifest, result)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description="spanlake side of the benchmark")
    sub = parser.add_subparsers(dest="command", required=True)
    load_cmd = sub.add_parser("load", help="the load process: push a requests file over OTLP gRPC")
    load_cmd.add_argument("target")
    load_cmd.add_argument("requests", type=Path)
    load_cmd.add_argument("--streams", type=int, default=LOAD_STREAMS)
    run_cmd = sub.add_parser("run", help="ingest and query one generated data set")
    run_cmd.add_argument("manifest", type=Path)
    run_cmd.add_argument("--work-dir", type=Path, default=Path("bench/out"))
    args = parser.parse_args()
    if args.command == "load":
        print(json.dumps(load(args.target, args.requests, args.streams)))
    else:
        print(json.dumps(run(args.manifest, args.work_dir).__dict__, indent=2, default=str))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
