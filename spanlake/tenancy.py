"""The request's tenant, and a reader and writer that follow it.

The HTTP middleware and the gRPC interceptor put the caller's tenant into a context variable for
the duration of one request. ``TenantReader`` and ``TenantWriter`` implement the storage protocols
by forwarding each call to ``store.for_tenant(current_tenant())``: the collector and query routers
keep taking one ``SpanWriter``/``SpanReader`` at construction (and routers added later on other
branches are bound to the tenant without knowing it), while storage gets the tenant explicitly.

A call made outside a request (no tenant set) raises instead of falling back to any tenant, so a
path that bypasses the middleware fails closed. Context variables follow a request into the
worker threads that FastAPI and anyio run blocking code on (``anyio.to_thread`` copies the context).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from typing import Any

import pyarrow as pa

from spanlake.storage.api import DependencyLink, Operation, SpanWriter, StoreOverloaded, TraceQuery
from spanlake.storage.catalog import Snapshot
from spanlake.storage.segments import Segment
from spanlake.storage.store import SegmentStore, TenantStore

_tenant: ContextVar[str] = ContextVar("spanlake_tenant")


class NoTenant(RuntimeError):
    """Storage was reached outside a request that went through authentication."""


def current_tenant() -> str:
    try:
        return _tenant.get()
    except LookupError:
        raise NoTenant("no tenant bound to this call (it did not pass the auth layer)") from None


def tenant_or_empty() -> str:
    """The current tenant for log records: "" outside a request."""
    return _tenant.get("")


@contextlib.contextmanager
def bound_tenant(tenant: str) -> Iterator[None]:
    token = _tenant.set(tenant)
    try:
        yield
    finally:
        _tenant.reset(token)


Report = Callable[[str, pa.Table, str], None]  # (tenant, spans, "accepted" or a refusal reason)


class TenantWriter:
    """``SpanWriter`` writing for the current request's tenant.

    ``admit(tenant, spans)`` runs first and raises to refuse (per-tenant limits); ``report`` hears
    every outcome (metrics). A refusal's reason is the exception's ``reason`` attribute, else
    ``overloaded`` for a full store.
    """

    def __init__(self, store: SegmentStore, admit: Callable[[str, pa.Table], None] | None = None,
                 report: Report | None = None) -> None:
        self._store = store
        self._admit = admit
        self._report = report

    def write(self, spans: pa.Table) -> None:
        tenant = current_tenant()
        try:
            if self._admit is not None:
                self._admit(tenant, spans)
            self._store.for_tenant(tenant).write(spans)
        except Exception as exc:
            if self._report is not None:
                reason = getattr(exc, "reason", "overloaded" if isinstance(exc, StoreOverloaded) else "error")
                self._report(tenant, spans, str(reason))
            raise
        if self._report is not None:
            self._report(tenant, spans, "accepted")

    def check_capacity(self, incoming_spans: int = 0) -> None:
        """The store's own refusal (full buffer, disk reserve), asked before a request is decoded."""
        self._store.check_capacity(incoming_spans)


class FixedTenantWriter:
    """A writer for one tenant, for transports with no request to carry one (the UDP agent ports)."""

    def __init__(self, inner: SpanWriter, tenant: str) -> None:
        self._inner = inner
        self._tenant = tenant

    def write(self, spans: pa.Table) -> None:
        with bound_tenant(self._tenant):
            self._inner.write(spans)


class TenantReader:
    """``SpanReader`` reading the current request's tenant only; also the TraceQL engine's
    ``SqlSource``, so Tempo's API (and every search, which the engine runs) sees that tenant only."""

    def __init__(self, store: SegmentStore) -> None:
        self._store = store

    def _view(self) -> TenantStore:
        return self._store.for_tenant(current_tenant())

    def snapshot(self) -> Snapshot:
        """The current tenant's snapshot (what the SQL engine reads)."""
        return self._store.snapshot(current_tenant())

    def get_traces(self, trace_ids: Sequence[bytes], start_time_min_ns: int | None = None,
                   start_time_max_ns: int | None = None) -> pa.Table:
        return self._view().get_traces(trace_ids, start_time_min_ns, start_time_max_ns)

    def get_traces_capped(self, trace_ids: Sequence[bytes], max_spans_per_trace: int) -> pa.Table:
        """``get_traces`` that stops reading a trace past ``max_spans_per_trace`` (``LimitedReader``)."""
        return self._view().get_traces_capped(trace_ids, max_spans_per_trace)

    def find_trace_ids(self, query: TraceQuery) -> list[bytes]:
        return self._view().find_trace_ids(query)

    def find_traces(self, query: TraceQuery) -> pa.Table:
        return self._view().find_traces(query)

    def get_services(self) -> list[str]:
        return self._view().get_services()

    def get_operations(self, service: str, span_kind: int | None = None) -> list[Operation]:
        return self._view().get_operations(service, span_kind)

    def get_dependencies(self, end_time_ns: int, lookback_ns: int) -> list[DependencyLink]:
        return self._view().get_dependencies(end_time_ns, lookback_ns)

    def scan_spans(self, columns: Sequence[str], start_time_min_ns: int, start_time_max_ns: int,
                   services: Sequence[str] | None = None) -> pa.Table:
        return self._view().scan_spans(columns, start_time_min_ns, start_time_max_ns, services)

    def run_sql(self, sql: str, params: dict[str, Any], start_time_min_ns: int | None = None,
                start_time_max_ns: int | None = None, trace_ids: Sequence[bytes] | None = None,
                tables: Mapping[str, pa.Table] | None = None,
                segment_filter: Callable[[Segment], bool] | None = None) -> pa.Table:
        return self._view().reader.run_sql(sql, params, start_time_min_ns, start_time_max_ns, trace_ids,
                                           tables, segment_filter)

    def run_sql_newest_first(self, sql: str, params: dict[str, Any], start_time_min_ns: int,
                             start_time_max_ns: int, segment_filter: Callable[[Segment], bool] | None = None,
                             ) -> Iterator[tuple[pa.Table, int | None]]:
        return self._view().reader.run_sql_newest_first(sql, params, start_time_min_ns, start_time_max_ns,
                                                        segment_filter)
