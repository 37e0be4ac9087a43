"""Every listener ``serve`` runs, built with its security wrapped around it.

Each HTTP app gets the auth middleware at the app level and each gRPC server the auth interceptor,
so whatever routes or services the roles register are covered. Writers and readers handed to the
roles follow the request's tenant (``tenancy.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import grpc
from fastapi import FastAPI

from spanlake.auth import Credentials, Decision
from spanlake.collector import jaeger_grpc, jaeger_http, otlp_grpc, otlp_http, sampling, zipkin_http
from spanlake.collector.formats.otlp import decode_otlp_json
from spanlake.config import Settings
from spanlake.grpc_auth import AuthInterceptor
from spanlake.http_auth import AuthMiddleware, RightFor
from spanlake.limits import TenantLimits
from spanlake.query import app as query_app
from spanlake.query import sql as sql_api
from spanlake.selftrace import SelfTracer
from spanlake.storage.api import DEFAULT_TENANT, SpanReader, SpanWriter
from spanlake.storage.sql import SqlBusy, SqlEngine, SqlResult, SqlTimeout
from spanlake.storage.store import SegmentStore
from spanlake.storage.traceql.engine import TraceQLEngine
from spanlake.tenancy import FixedTenantWriter, TenantReader, current_tenant
from spanlake.tls import TlsFiles
from spanlake.ui import app as ui_app

log = logging.getLogger("spanlake")

OnRefused = Callable[[str, str, Decision], None]  # (listener, path or method, decision)


@dataclass(frozen=True)
class HttpListener:
    name: str
    app: FastAPI
    port: int


@dataclass(frozen=True)
class GrpcListener:
    name: str
    server: grpc.Server
    port: int


@dataclass
class Listeners:
    http: list[HttpListener] = field(default_factory=list)
    grpc: list[GrpcListener] = field(default_factory=list)
    udp: list[tuple[Literal["compact", "binary"], int, SpanWriter]] = field(default_factory=list)


@dataclass(frozen=True)
class Security:
    credentials: Credentials | None = None  # None: auth off (trusted networks only)
    tls: TlsFiles | None = None
    on_refused: OnRefused | None = None
    on_grpc_bad_request: Callable[[str, str], None] | None = None  # (listener, tenant)
    tracer: SelfTracer | None = None  # --self-trace: gRPC calls become spans too

    def guard_http(self, name: str, app: FastAPI, right_for: RightFor) -> FastAPI:
        app.add_middleware(AuthMiddleware, credentials=self.credentials, right_for=right_for,
                           on_refused=self._refused(name))
        return app

    def interceptor(self, name: str, right: str) -> AuthInterceptor:
        """Every method of the server needs ``right`` (a query-side server would pass its own)."""
        hook = self.on_grpc_bad_request
        bad = None if hook is None else (lambda tenant: hook(name, tenant))
        return AuthInterceptor(self.credentials, lambda method: right, on_refused=self._refused(name),
                               on_bad_request=bad, tracer=self.tracer, listener=name)

    def _refused(self, name: str) -> Callable[[str, Decision], None] | None:
        hook = self.on_refused
        if hook is None:
            return None
        return lambda where, decision: hook(name, where, decision)


def ingest_right(method: str, path: str) -> str:
    return "ingest"


def zipkin_right(method: str, path: str) -> str:
    """Port 9411: POSTs ingest; anything else is Zipkin's read API (as it lands) and needs ``query``."""
    return "ingest" if method == "POST" else "query"


def query_right(method: str, path: str) -> str:
    """The query port: SQL needs ``sql``, everything else (APIs, UI pages and assets) ``query``."""
    return "sql" if path.rstrip("/") == "/api/sql" or path.startswith("/api/sql/") else "query"


def collector_listeners(settings: Settings, sec: Security, out: Listeners,
                        writer_for: Callable[[str], SpanWriter], zipkin_reader: SpanReader | None) -> None:
    """``writer_for(protocol)``: the tenant-following writer each receiver writes through;
    ``zipkin_reader``: where the Zipkin port's read API reads, if it serves one."""
    limit = settings.max_request_bytes
    strategies = sampling.load_strategies(settings.sampling_strategies)
    if settings.otlp_grpc_port:
        server = otlp_grpc.grpc_server(limit, interceptors=[sec.interceptor("otlp_grpc", "ingest")])
        server.add_generic_rpc_handlers([otlp_grpc.export_handler(writer_for("otlp_grpc"))])
        out.grpc.append(GrpcListener("otlp_grpc", server, settings.otlp_grpc_port))
    if settings.jaeger_grpc_port:
        server = otlp_grpc.grpc_server(limit, interceptors=[sec.interceptor("jaeger_grpc", "ingest")])
        jaeger_grpc.add_collector_service(server, writer_for("jaeger_grpc"))
        jaeger_grpc.add_sampling_service(server, strategies)
        out.grpc.append(GrpcListener("jaeger_grpc", server, settings.jaeger_grpc_port))
    zipkin = zipkin_http.make_app(writer_for("zipkin"), limit)
    if zipkin_reader is not None:
        query_app.mount_zipkin_api(zipkin, zipkin_reader, settings.autocomplete_keys)
    apps = [
        ("otlp_http", otlp_http.make_app(writer_for("otlp_http"), limit), settings.otlp_http_port),
        ("jaeger_http", jaeger_http.make_app(writer_for("jaeger_http"), strategies, max_body_bytes=limit),
         settings.jaeger_http_port),
        ("zipkin", zipkin, settings.zipkin_port),
        ("sampling", sampling.make_sampling_app(strategies), settings.sampling_port),
    ]
    for name, app, port in apps:
        if port:
            right = zipkin_right if name == "zipkin" else ingest_right
            out.http.append(HttpListener(name, sec.guard_http(name, app, right), port))
    _udp_listeners(settings, sec, out, writer_for)


def _udp_listeners(settings: Settings, sec: Security, out: Listeners,
                   writer_for: Callable[[str], SpanWriter]) -> None:
    ports: list[tuple[Literal["compact", "binary"], int]] = [
        ("compact", settings.jaeger_compact_port), ("binary", settings.jaeger_binary_port)]
    wanted = [(protocol, port) for protocol, port in ports if port]
    if wanted and sec.credentials is not None:
        # A datagram carries no credentials: with auth on, the agent ports cannot be secured.
        log.warning("auth is on: the Jaeger agent UDP ports stay closed (UDP carries no token)")
        return
    for protocol, port in wanted:  # auth off: the default tenant, as for any request without one
        writer = FixedTenantWriter(writer_for(f"jaeger_udp_{protocol}"), DEFAULT_TENANT)
        out.udp.append((protocol, port, writer))


class TenantSqlEngine(SqlEngine):
    """The SQL engine over the current request's tenant only, under that tenant's concurrency
    limit, counting every outcome."""

    def __init__(self, reader: TenantReader, limits: TenantLimits, settings: Settings) -> None:
        super().__init__(reader.snapshot, timeout_s=settings.sql_timeout, max_rows=settings.sql_max_rows,
                         memory_limit=settings.sql_memory_limit, max_concurrent=settings.sql_max_concurrent)
        self.limits = limits

    def execute(self, query: str, max_rows: int | None = None) -> SqlResult:
        tenant = current_tenant()
        if not self.limits.sql_enter(tenant):
            cap = self.limits.of(tenant).sql_max_concurrent
            raise SqlBusy(f"tenant {tenant!r} already runs its {cap} SQL queries at once; retry shortly")
        outcome = "error"
        try:
            result = super().execute(query, max_rows)
            outcome = "ok"
            return result
        except SqlBusy:
            outcome = "refused"
            raise
        except SqlTimeout:
            outcome = "interrupted"
            raise
        finally:
            self.limits.sql_exit(tenant)
            self.limits.count_sql(tenant, outcome)


def query_listeners(settings: Settings, store: SegmentStore, sec: Security, out: Listeners,
                    limits: TenantLimits) -> SqlEngine | None:
    if not settings.query_port:
        return None
    reader = TenantReader(store)
    engine = TenantSqlEngine(reader, limits, settings)
    app = query_app.make_app(reader, lambda body: decode_otlp_json(body).spans,
                             extra_routers=[sql_api.router(engine), ui_app.router()],
                             zipkin_autocomplete_keys=settings.autocomplete_keys,
                             traceql=TraceQLEngine(reader))
    ui_app.install_not_found_page(app)  # unknown UI paths: the app's own 404 page
    out.http.append(HttpListener("query", sec.guard_http("query", app, query_right), settings.query_port))
    return engine
