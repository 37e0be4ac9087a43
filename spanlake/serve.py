"""``spanlake serve``: every role in one process on one store, shut down gracefully on SIGTERM/SIGINT.

Start order: the admin port first (so probes see "live, not ready"), then the store (WAL replay),
then every other listener; ready once all of them are up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import socket
import time
from collections.abc import Callable, Generator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pyarrow as pa
import uvicorn
from fastapi import FastAPI

from spanlake import admin, http_timeouts, listeners
from spanlake.auth import CredentialsError, Principal, load_credentials
from spanlake.collector import jaeger_udp
from spanlake.collector.admission import TRACKED_TRACES, Admission, IngestLimits, TraceBudget
from spanlake.config import Settings
from spanlake.limits import LimitsError, TenantLimits, load_limits
from spanlake.listeners import Listeners, Security
from spanlake.metrics import Metrics
from spanlake.observe import RequestMiddleware
from spanlake.selftrace import SelfTracer
from spanlake.startup import StartupError
from spanlake.storage.api import DEFAULT_TENANT, SpanWriter
from spanlake.storage.compaction import LostLeadership
from spanlake.storage.lease import LeaseKeeper, open_lease
from spanlake.storage.location import StorageUnavailable, open_location
from spanlake.storage.segments import HOUR_NS
from spanlake.storage.store import SegmentStore, StoreConfig
from spanlake.storage.wal_lock import WalDirectoryInUse
from spanlake.tenancy import TenantReader, TenantWriter, tenant_or_empty
from spanlake.tls import TlsError, TlsFiles

log = logging.getLogger("spanlake")

# Failpoint for the readiness test: seconds to wait before opening the store (as a long WAL replay
# would), with the admin port already up. Never set in production.
_PAUSE_BEFORE_STORE_S = float(os.environ.get("SPANLAKE_TEST_START_PAUSE", "0"))


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signals to ``serve`` (several servers share one process)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


@dataclass
class Runtime:
    """What one ``serve`` holds: its security, limits, metrics and health, built from settings."""

    settings: Settings
    security: Security
    limits: TenantLimits
    metrics: Metrics = field(default_factory=Metrics)
    health: admin.Health = field(default_factory=admin.Health)
    tracer: SelfTracer | None = None
    # Spans and bytes per trace so far, shared by every receiver, counted per tenant (issue 14).
    trace_budget: TraceBudget = field(default_factory=lambda: TraceBudget(TRACKED_TRACES))

    @classmethod
    def from_settings(cls, settings: Settings) -> Runtime:
        try:
            credentials = load_credentials(settings.tokens_file) if settings.tokens_file else None
            tls = TlsFiles.from_settings(settings.tls_cert, settings.tls_key, settings.tls_client_ca)
            limits = load_limits(settings.limits_file, settings)
        except (CredentialsError, TlsError, LimitsError) as exc:
            raise SystemExit(f"spanlake: {exc}") from None
        metrics = Metrics()
        tracer = SelfTracer() if settings.self_trace else None
        if tracer is not None and credentials is not None:
            credentials = credentials.with_token(
                tracer.token, Principal("spanlake-self-trace", DEFAULT_TENANT, frozenset({"ingest"})))
        security = Security(credentials, tls, on_refused=metrics.request_refused,
                            on_grpc_bad_request=lambda name, tenant: metrics.grpc_refused(name, tenant,
                                                                                          "bad_request"),
                            tracer=tracer)
        limits.on_sql = metrics.sql.labels
        return cls(settings, security, limits, metrics, tracer=tracer)

    def writer_for(self, store: SegmentStore) -> Callable[[str], SpanWriter]:
        """Each receiver's writer: the global ingest limits (``Admission``: spans per request, start
        time window, negative durations, per-trace budget per tenant) first, then the tenant's own
        limits (``TenantLimits.admit``) and the store of the request's tenant."""
        def make(protocol: str) -> SpanWriter:
            def report(tenant: str, spans: pa.Table, outcome: str) -> None:
                self.metrics.ingest_outcome(protocol, tenant, spans, outcome)
            tenant_writer = TenantWriter(store, admit=self.limits.admit, report=report)
            return Admission(tenant_writer, ingest_limits(self.settings), budget=self.trace_budget,
                             scope=tenant_or_empty)
        return make

    def build(self, store: SegmentStore) -> Listeners:
        """Every listener of this process's roles, with auth, metrics and request IDs around them."""
        out = Listeners()
        settings = self.settings
        if settings.has_role("collector"):
            # Zipkin clients read where they write, as with Zipkin's server: with the query role in
            # this process, the Zipkin port serves the read API too.
            zipkin_reader = listeners.limited_reader(settings, TenantReader(store)) \
                if settings.has_role("query") else None
            listeners.collector_listeners(settings, self.security, out, self.writer_for(store), zipkin_reader)
        if settings.has_role("query"):
            listeners.query_listeners(settings, store, self.security, out, self.limits)
        for listener in out.http:
            listener.app.add_middleware(RequestMiddleware, listener=listener.name,
                                        observe=self.metrics.observe_request, tracer=self.tracer)
        return out

    def self_trace_task(self, out: Listeners) -> asyncio.Task[None] | None:
        """The export loop of ``--self-trace``, into this process's own OTLP/HTTP app."""
        if self.tracer is None:
            return None
        otlp = [h.app for h in out.http if h.name == "otlp_http"]
        if not otlp:
            log.warning("--self-trace needs the OTLP/HTTP receiver in this process (collector role, "
                        "--otlp-http-port not 0): not exporting")
            return None
        return asyncio.create_task(self.tracer.run(otlp[0]))

    def admin_listener(self) -> listeners.HttpListener | None:
        if not self.settings.admin_port:
            return None
        app = self.security.guard_http("admin", admin.make_app(self.health, self.metrics), admin.admin_right)
        app.add_middleware(RequestMiddleware, listener="admin", tracer=self.tracer)
        return listeners.HttpListener("admin", app, self.settings.admin_port)


def ingest_limits(settings: Settings) -> IngestLimits:
    return IngestLimits(max_spans_per_request=settings.max_spans_per_request,
                        max_spans_per_trace=settings.max_spans_per_trace,
                        max_bytes_per_trace=settings.max_bytes_per_trace,
                        max_span_age_ns=int(settings.max_span_age_hours * HOUR_NS),
                        max_span_future_ns=int(settings.max_span_future_hours * HOUR_NS))


def open_store(settings: Settings) -> SegmentStore:
    """The store of ``--storage`` (default: the data directory). A start fails with one line
    (``StartupError``) when another process holds the WAL directory, or when the object store
    cannot be reached (a collector must list it to know what its WAL still has to upload)."""
    try:
        loc = open_location(settings.store_uri)
    except (StorageUnavailable, ValueError) as e:
        raise StartupError(f"{e}; check --storage (SPANLAKE_STORAGE) and the AWS_* variables") from e
    config = StoreConfig(flush_interval_s=settings.flush_interval,
                         segment_max_spans=settings.segment_max_spans,
                         max_buffered_spans=settings.max_buffered_spans, wal_dir=settings.wal_dir,
                         disk_reserve_bytes=settings.disk_reserve_bytes,
                         refresh_s=settings.refresh_interval,
                         # Locally, queries of the same process retry a vanished file; on a bucket,
                         # query nodes elsewhere may still be reading the inputs.
                         compaction_grace_s=0.0 if loc.is_local else settings.compaction_grace,
                         cache_dir=settings.data_dir / "cache",  # used for a remote store only
                         segment_cache_bytes=settings.segment_cache_bytes)
    try:
        return SegmentStore(settings.data_dir, config, writable=settings.has_role("collector"), storage=loc)
    except (WalDirectoryInUse, StorageUnavailable) as e:
        raise StartupError(str(e)) from e


def _where(settings: Settings) -> str:
    return settings.storage or str(settings.data_dir.absolute())


async def serve(settings: Settings) -> int:
    """Run until SIGTERM/SIGINT; returns the process exit code."""
    runtime = Runtime.from_settings(settings)
    if runtime.security.credentials is None:
        log.warning("no --tokens-file: every listener is open to anyone who can reach it "
                    "(for trusted networks only; see docs/security.md)")
    stop = asyncio.Event()
    _on_signals(stop)
    admin_listener = runtime.admin_listener()
    admin_server = _uvicorn(settings, runtime.security, admin_listener.app, admin_listener.port) \
        if admin_listener else None
    admin_task = asyncio.create_task(admin_server.serve()) if admin_server else None
    if admin_server is not None and admin_task is not None:
        while not admin_server.started and not admin_task.done():
            await asyncio.sleep(0.02)
        if admin_task.done():
            raise SystemExit(f"spanlake: cannot start the admin listener on port {settings.admin_port}")
    store = None
    out = Listeners()
    try:
        if _PAUSE_BEFORE_STORE_S:
            await asyncio.sleep(_PAUSE_BEFORE_STORE_S)
        store = await asyncio.to_thread(open_store, settings)  # replays the WAL
        runtime.health.mark(wal_replayed=True)
        runtime.metrics.watch_store(store)
        out = runtime.build(store)
        return await _run(runtime, out, store, stop)
    finally:
        runtime.health.mark(stopping=True)
        for listener in out.grpc:
            listener.server.stop(grace=5).wait()
        if store is not None:
            store.close()  # flushes the tail: a graceful stop leaves everything in segments
        if admin_server is not None and admin_task is not None:
            admin_server.should_exit = True
            await asyncio.gather(admin_task, return_exceptions=True)
        log.info("spanlake stopped")


def _on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


def _uvicorn(settings: Settings, sec: Security, app: FastAPI, port: int) -> _Server:
    # A bounded graceful shutdown: uvicorn would otherwise wait forever for clients that keep
    # connections open (seen as servers ignoring SIGTERM in the test and benchmark runs).
    # Header and body read timeouts: a half-sent request must not hold a connection forever.
    tls = sec.tls.uvicorn_options() if sec.tls else {}
    http = http_timeouts.protocol_class(settings.http_header_timeout, settings.http_body_timeout)
    return _Server(uvicorn.Config(app, host=settings.host, port=port, log_level=settings.log_level,
                                  lifespan="off", access_log=False, timeout_graceful_shutdown=5,
                                  log_config=None, http=http, **tls))


async def _run(runtime: Runtime, out: Listeners, store: SegmentStore, stop: asyncio.Event) -> int:
    settings = runtime.settings
    servers = [_uvicorn(settings, runtime.security, h.app, h.port) for h in out.http]
    for listener in out.grpc:
        _bind(listener, settings.host, runtime.security)
        listener.server.start()
    udp_writes = ThreadPoolExecutor(max_workers=2, thread_name_prefix="spanlake-udp")
    transports = [await jaeger_udp.start_agent_udp(settings.host, port, protocol, writer, udp_writes)
                  for protocol, port, writer in out.udp]
    tasks = [asyncio.create_task(s.serve()) for s in servers]
    background = []
    keeper = None
    if (settings.has_role("collector") or settings.has_role("compactor")) and settings.compact_interval > 0:
        holder = store.writer_id or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"
        lease = open_lease(store.loc, holder, settings.compactor_lease)
        keeper = LeaseKeeper(lease, period_s=settings.compactor_lease / 3).start()
        background.append(asyncio.create_task(_lifecycle(runtime, store, keeper)))
    self_trace = runtime.self_trace_task(out)
    waiter = asyncio.create_task(stop.wait())
    while not stop.is_set() and not all(s.started for s in servers):
        if any(t.done() for t in tasks):
            break
        await asyncio.sleep(0.05)
    failed = any(t.done() for t in tasks)
    if not failed and not stop.is_set():
        runtime.health.mark(listeners_up=True)
        log.info("spanlake ready: data in %s, roles %s", _where(settings), settings.roles)
        await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
        failed = not stop.is_set()
    runtime.health.mark(stopping=True)
    for s in servers:
        s.should_exit = True
    for sig in (signal.SIGTERM, signal.SIGINT):  # a second signal: stop waiting for anything
        asyncio.get_running_loop().add_signal_handler(sig, lambda: _force(servers))
    if self_trace is not None:  # its last export runs while the store still takes writes
        self_trace.cancel()
        await asyncio.gather(self_trace, return_exceptions=True)
    await asyncio.gather(*tasks, return_exceptions=True)
    waiter.cancel()
    for task in background:
        task.cancel()
    if keeper is not None:
        await asyncio.to_thread(keeper.stop)
    for transport in transports:
        transport.close()
    udp_writes.shutdown(wait=True)
    return 1 if failed else 0


def _force(servers: list[_Server]) -> None:
    for server in servers:
        server.force_exit = True


async def _lifecycle(runtime: Runtime, store: SegmentStore, keeper: LeaseKeeper) -> None:
    """Compaction of settled hours and retention (per tenant), in a thread, every
    ``compact_interval`` seconds, by whichever process holds the compactor lease (storage/lease.py)."""
    settings = runtime.settings
    lease = keeper.lease
    while True:
        await asyncio.sleep(settings.compact_interval)
        if not lease.held():
            continue
        now = time.time_ns()
        try:
            for tenant, hours in runtime.limits.retention(store.tenants()).items():
                if hours > 0:
                    await asyncio.to_thread(store.drop_older_than, now - int(hours * HOUR_NS), tenant,
                                            lease)
            # An hour is settled ten minutes after it ends: late spans rarely come later.
            await asyncio.to_thread(store.compact, settled_before_ns=now - HOUR_NS // 6, lease=lease)
        except LostLeadership as e:
            log.warning("%s", e)
        except Exception:
            log.exception("compaction or retention failed; will retry")


def _bind(listener: listeners.GrpcListener, host: str, sec: Security) -> None:
    address = f"{host}:{listener.port}"
    if sec.tls is not None:
        bound = listener.server.add_secure_port(address, sec.tls.grpc_credentials())
    else:
        bound = listener.server.add_insecure_port(address)
    if bound == 0:
        raise SystemExit(f"spanlake: cannot listen on {address}")
