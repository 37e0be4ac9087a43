"""``spanlake serve``: every role in one process on one store, shut down gracefully on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import socket
import time
from collections.abc import Generator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

import grpc
import uvicorn
from fastapi import FastAPI

from spanlake.collector import (
    jaeger_grpc,
    jaeger_http,
    jaeger_udp,
    otlp_grpc,
    otlp_http,
    sampling,
    zipkin_http,
)
from spanlake.collector.formats.otlp import decode_otlp_json
from spanlake.config import Settings
from spanlake.query import app as query_app
from spanlake.query import sql as sql_api
from spanlake.storage.compaction import LostLeadership
from spanlake.storage.lease import LeaseKeeper, open_lease
from spanlake.storage.location import StorageUnavailable, open_location
from spanlake.storage.segments import HOUR_NS
from spanlake.storage.sql import SqlEngine
from spanlake.storage.store import SegmentStore, StoreConfig
from spanlake.storage.wal_lock import WalDirectoryInUse
from spanlake.ui import app as ui_app

log = logging.getLogger("spanlake")


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signals to ``serve`` (several servers share one process)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


@dataclass
class Listeners:
    http: list[tuple[FastAPI, int]] = field(default_factory=list)
    grpc: list[grpc.Server] = field(default_factory=list)
    udp: list[tuple[Literal["compact", "binary"], int]] = field(default_factory=list)


def open_store(settings: Settings) -> SegmentStore:
    """The store of ``--storage`` (default: the data directory); exits with one clear line when
    another process holds the WAL directory, or when the object store cannot be reached (a
    collector must list it to know what its WAL still has to upload)."""
    try:
        loc = open_location(settings.store_uri)
    except (StorageUnavailable, ValueError) as e:
        raise SystemExit(f"spanlake: {e}") from None
    config = StoreConfig(flush_interval_s=settings.flush_interval,
                         segment_max_spans=settings.segment_max_spans,
                         max_buffered_spans=settings.max_buffered_spans, wal_dir=settings.wal_dir,
                         refresh_s=settings.refresh_interval,
                         # Locally, queries of the same process retry a vanished file; on a bucket,
                         # query nodes elsewhere may still be reading the inputs.
                         compaction_grace_s=0.0 if loc.is_local else settings.compaction_grace,
                         cache_dir=settings.data_dir / "cache")  # used for a remote store only
    try:
        return SegmentStore(settings.data_dir, config, writable=settings.has_role("collector"), storage=loc)
    except (WalDirectoryInUse, StorageUnavailable) as e:
        raise SystemExit(f"spanlake: {e}") from None


def collector_listeners(settings: Settings, store: SegmentStore, out: Listeners) -> None:
    limit = settings.max_request_bytes
    strategies = sampling.load_strategies(settings.sampling_strategies)
    if settings.otlp_grpc_port:
        server = otlp_grpc.grpc_server(limit)
        server.add_generic_rpc_handlers([otlp_grpc.export_handler(store)])
        out.grpc.append(_bind(server, settings.host, settings.otlp_grpc_port))
    if settings.jaeger_grpc_port:
        server = otlp_grpc.grpc_server(limit)
        jaeger_grpc.add_collector_service(server, store)
        jaeger_grpc.add_sampling_service(server, strategies)
        out.grpc.append(_bind(server, settings.host, settings.jaeger_grpc_port))
    for app, port in [
        (otlp_http.make_app(store, limit), settings.otlp_http_port),
        (jaeger_http.make_app(store, strategies, max_body_bytes=limit), settings.jaeger_http_port),
        (zipkin_http.make_app(store, limit), settings.zipkin_port),
        (sampling.make_sampling_app(strategies), settings.sampling_port),
    ]:
        if port:
            out.http.append((app, port))
    if settings.jaeger_compact_port:
        out.udp.append(("compact", settings.jaeger_compact_port))
    if settings.jaeger_binary_port:
        out.udp.append(("binary", settings.jaeger_binary_port))


def query_listeners(settings: Settings, store: SegmentStore, out: Listeners) -> None:
    if settings.query_port:
        engine = SqlEngine(store.snapshot, timeout_s=settings.sql_timeout, max_rows=settings.sql_max_rows,
                           memory_limit=settings.sql_memory_limit,
                           max_concurrent=settings.sql_max_concurrent)
        app = query_app.make_app(store, lambda body: decode_otlp_json(body).spans,
                                 extra_routers=[sql_api.router(engine), ui_app.router()])
        out.http.append((app, settings.query_port))


async def serve(settings: Settings) -> int:
    """Run until SIGTERM/SIGINT; returns the process exit code."""
    store = open_store(settings)
    listeners = Listeners()
    try:
        if settings.has_role("collector"):
            collector_listeners(settings, store, listeners)
        if settings.has_role("query"):
            query_listeners(settings, store, listeners)
        return await _run(settings, listeners, store)
    finally:
        for server in listeners.grpc:
            server.stop(grace=5).wait()
        store.close()  # flushes the tail: a graceful stop leaves everything in segments
        log.info("spanlake stopped")


async def _run(settings: Settings, listeners: Listeners, store: SegmentStore) -> int:
    # A bounded graceful shutdown: uvicorn would otherwise wait forever for clients that keep
    # connections open (seen as servers ignoring SIGTERM in the test and benchmark runs).
    servers = [_Server(uvicorn.Config(app, host=settings.host, port=port, log_level=settings.log_level,
                                      lifespan="off", access_log=False, timeout_graceful_shutdown=5))
               for app, port in listeners.http]
    for server in listeners.grpc:
        server.start()
    udp_writes = ThreadPoolExecutor(max_workers=2, thread_name_prefix="spanlake-udp")
    transports = [await jaeger_udp.start_agent_udp(settings.host, port, protocol, store, udp_writes)
                  for protocol, port in listeners.udp]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if stop.is_set():  # a second signal: stop waiting for anything
            for server in servers:
                server.force_exit = True
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    tasks = [asyncio.create_task(s.serve()) for s in servers]
    background = []
    keeper = None
    if (settings.has_role("collector") or settings.has_role("compactor")) and settings.compact_interval > 0:
        holder = store.writer_id or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"
        lease = open_lease(store.loc, holder, settings.compactor_lease)
        keeper = LeaseKeeper(lease, period_s=settings.compactor_lease / 3).start()
        background.append(asyncio.create_task(_lifecycle(settings, store, keeper)))
    waiter = asyncio.create_task(stop.wait())
    while not stop.is_set() and not all(s.started for s in servers):
        if any(t.done() for t in tasks):
            break
        await asyncio.sleep(0.05)
    failed = any(t.done() for t in tasks)
    if not failed:
        log.info("spanlake ready: data in %s, roles %s", settings.store_uri, settings.roles)
        await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
        failed = not stop.is_set()
    for s in servers:
        s.should_exit = True
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


async def _lifecycle(settings: Settings, store: SegmentStore, keeper: LeaseKeeper) -> None:
    """Compaction of settled hours and retention, in a thread, every ``compact_interval`` seconds,
    by whichever process holds the compactor lease (storage/lease.py)."""
    lease = keeper.lease
    while True:
        await asyncio.sleep(settings.compact_interval)
        if not lease.held():
            continue
        now = time.time_ns()
        try:
            if settings.retention_hours > 0:
                await asyncio.to_thread(store.drop_older_than,
                                        now - int(settings.retention_hours * HOUR_NS), lease)
            # An hour is settled ten minutes after it ends: late spans rarely come later.
            await asyncio.to_thread(store.compact, settled_before_ns=now - HOUR_NS // 6, lease=lease)
        except LostLeadership as e:
            log.warning("%s", e)
        except Exception:
            log.exception("compaction or retention failed; will retry")


def _bind(server: grpc.Server, host: str, port: int) -> grpc.Server:
    if server.add_insecure_port(f"{host}:{port}") == 0:
        raise SystemExit(f"spanlake: cannot listen on {host}:{port}")
    return server
