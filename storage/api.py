"""The storage contract: one writer method, a small reader, and the value types they exchange.

Every backend (the Parquet segment store; in tests, the in-memory reference store of
``tests/storage/memory.py``) implements both protocols
and passes the same conformance suite (``tests/storage/test_conformance.py``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import pyarrow as pa


@dataclass(frozen=True)
class TraceQuery:
    """A trace search, Jaeger style: every filter must hold on one and the same span.

    ``attributes`` pairs are ANDed. A pair ``k=v`` holds on a span when ``k`` with a value whose
    string form is ``v`` appears in its span, resource, scope, event or link attributes. Special keys
    (as Jaeger's memory store): ``error`` (``true``: status ERROR, ``false``: not ERROR),
    ``span.status`` (``ok``/``error``/``unset``), ``span.kind``, ``scope.name``, ``scope.version``,
    and ``resource.<k>`` (resource attributes only).

    ``marks`` are bare words (Zipkin's ``annotationQuery`` terms without ``=``): each holds on a span
    when one of its events is named so or its span or resource attributes have that key.
    """

    service_name: str | None = None  # None or "": all services
    operation_name: str | None = None
    span_kind: int | None = None  # OTLP SpanKind number
    attributes: Mapping[str, str] = field(default_factory=dict)
    marks: tuple[str, ...] = ()
    start_time_min_ns: int | None = None  # span start >= this
    start_time_max_ns: int | None = None  # span start <= this
    duration_min_ns: int | None = None
    duration_max_ns: int | None = None
    search_depth: int = 100  # the maximum number of traces


@dataclass(frozen=True, order=True)
class Operation:
    name: str
    span_kind: int  # OTLP SpanKind number; 0 when unspecified


@dataclass(frozen=True, order=True)
class DependencyLink:
    parent: str
    child: str
    call_count: int


class SpanWriter(Protocol):
    def write(self, spans: pa.Table) -> None:
        """Store spans (a table in ``SPAN_SCHEMA``).

        Returns only once the spans are durable: a crash after the return loses none of them.
        They are visible to readers of the same store within about a second. Raises on failure,
        in which case nothing of this call is visible.
        """
        ...


class SpanReader(Protocol):
    def get_traces(
        self,
        trace_ids: Sequence[bytes],
        start_time_min_ns: int | None = None,
        start_time_max_ns: int | None = None,
    ) -> pa.Table:
        """All spans of the given traces (16-byte IDs), in no particular order.

        The time bounds are hints only (Grafana passes them): a trace is returned whole even where
        some of its spans fall outside them. A missing ID is skipped silently. Duplicate span IDs
        within a trace are preserved, never merged.
        """
        ...

    def find_trace_ids(self, query: TraceQuery) -> list[bytes]:
        """IDs of traces with at least one span matching ``query``, most recent first.

        "Recent" is the latest matching span start. At most ``query.search_depth`` IDs.
        """
        ...

    def find_traces(self, query: TraceQuery) -> pa.Table:
        """The complete traces of ``find_trace_ids(query)``."""
        ...

    def get_services(self) -> list[str]:
        """Every service name that has spans, sorted."""
        ...

    def get_operations(self, service: str, span_kind: int | None = None) -> list[Operation]:
        """Distinct (span name, kind) pairs of a service, sorted; ``span_kind`` narrows them."""
        ...

    def scan_spans(
        self,
        columns: Sequence[str],
        start_time_min_ns: int,
        start_time_max_ns: int,
        services: Sequence[str] | None = None,
    ) -> pa.Table:
        """The given plain columns (e.g. service_name, name, kind, start_time_unix_nano,
        duration_nano, status_code) of every span starting in the window, optionally only of
        ``services``. For aggregates computed outside storage (Service Performance Monitoring)."""
        ...

    def get_dependencies(self, end_time_ns: int, lookback_ns: int) -> list[DependencyLink]:
        """Parent->child service call counts of spans starting in the window, sorted.

        A link is counted for each span whose parent span (same trace) belongs to another service.
        """
        ...


# A single-tenant deployment's tenant, named as Tempo names it when multi-tenancy is off.
DEFAULT_TENANT = "single-tenant"
# Tenant names become directory names: letters, digits and ``_ . -`` only, never ``.`` or ``..``
# (a subset of the characters Tempo and Cortex allow in X-Scope-OrgID).
_TENANT = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class InvalidTenant(ValueError):
    """A tenant name that cannot be used (it would not be a safe directory name)."""


def check_tenant(name: str) -> str:
    """``name`` if it is a valid tenant name, else ``InvalidTenant``."""
    if not _TENANT.fullmatch(name) or name in (".", ".."):
        raise InvalidTenant(f"invalid tenant {name!r}: use 1-64 letters, digits, '_', '.' or '-'")
    return name


class StoreOverloaded(Exception):
    """Raised by ``SpanWriter.write`` when the store cannot take more spans right now (its unflushed
    buffer is full). Nothing of the call is stored. Transports answer HTTP 429 / 503 or gRPC
    RESOURCE_EXHAUSTED / UNAVAILABLE so clients back off and retry."""
