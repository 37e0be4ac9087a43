"""Per-tenant limits: ingest rate with a burst, bytes per trace, retention hours, SQL concurrency.

From ``--limits-file`` (TOML; every key optional, 0 = no limit / the global setting)::

    [defaults]                 # every tenant without its own table
    ingest_rate = 5000         # spans per second, sustained (token bucket)
    ingest_burst = 20000       # spans accepted at once above the rate (default: one second's rate)
    max_bytes_per_trace = 5000000
    retention_hours = 72       # instead of --retention-hours
    sql_max_concurrent = 2     # SQL queries at once for this tenant (never above --sql-max-concurrent)

    [tenants.team-a]
    ingest_rate = 20000

Answers, in the protocol's terms: over the rate -> retryable (HTTP 503 + Retry-After, gRPC
RESOURCE_EXHAUSTED, as for a full store); a trace over its bytes -> client error (HTTP 400, gRPC
INVALID_ARGUMENT), the whole request refused; SQL over the tenant's concurrency -> 503 + Retry-After.
Each refusal is counted (``spanlake_receiver_refused_spans_total{reason}``,
``spanlake_sql_queries_total{outcome="refused"}``).
"""

from __future__ import annotations

import threading
import time
import tomllib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from spanlake.collector.formats.errors import FormatError
from spanlake.config import Settings
from spanlake.storage.api import StoreOverloaded

# Traces whose byte counts are remembered per tenant, most recent first; older ones are forgotten.
_TRACKED_TRACES = 50_000


class LimitsError(ValueError):
    pass


class RateLimited(StoreOverloaded):
    reason = "rate_limited"


class TraceTooLarge(FormatError):
    reason = "trace_too_large"


@dataclass(frozen=True)
class Limits:
    ingest_rate: float = 0.0
    ingest_burst: float = 0.0
    max_bytes_per_trace: int = 0
    retention_hours: float = 0.0
    sql_max_concurrent: int = 0


class _Bucket:
    """Token bucket: ``rate`` per second up to ``burst``. A request larger than the burst passes
    when the bucket is full and leaves it in debt, so a big batch is slowed, never refused forever."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens, self.at = burst, time.monotonic()

    def take(self, n: int) -> float:
        """0 if ``n`` tokens were taken, else the seconds until they would be."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= min(n, self.burst):
            self.tokens -= n
            return 0.0
        return (min(n, self.burst) - self.tokens) / self.rate


class TenantLimits:
    def __init__(self, defaults: Limits, tenants: dict[str, Limits], sql_cap: int) -> None:
        self.defaults = defaults
        self.tenants = tenants
        self.sql_cap = sql_cap
        self._lock = threading.Lock()
        self._buckets: dict[str, _Bucket] = {}
        self._trace_bytes: dict[str, OrderedDict[bytes, int]] = {}
        self._sql_running: dict[str, int] = {}
        self.on_sql: Callable[[str, str], Any] | None = None  # (tenant, outcome) -> counter child

    def of(self, tenant: str) -> Limits:
        return self.tenants.get(tenant, self.defaults)

    def admit(self, tenant: str, spans: pa.Table) -> None:
        """Refuse ``spans`` (raise) if they would break ``tenant``'s ingest limits; else count them."""
        limits = self.of(tenant)
        with self._lock:
            added = self._check_trace_bytes(tenant, spans, limits.max_bytes_per_trace) \
                if limits.max_bytes_per_trace else {}
            if limits.ingest_rate:
                bucket = self._buckets.get(tenant)
                if bucket is None:
                    burst = limits.ingest_burst or limits.ingest_rate
                    bucket = self._buckets[tenant] = _Bucket(limits.ingest_rate, burst)
                wait = bucket.take(spans.num_rows)
                if wait:
                    raise RateLimited(f"tenant {tenant!r} is over its ingest rate of "
                                      f"{limits.ingest_rate:g} spans/s; retry in {wait:.1f} s")
            if added:
                self._remember(tenant, added)

    def _check_trace_bytes(self, tenant: str, spans: pa.Table, cap: int) -> dict[bytes, int]:
        seen: dict[bytes, int] = self._trace_bytes.get(tenant, {})
        added = _bytes_per_trace(spans)
        for trace_id, size in added.items():
            if seen.get(trace_id, 0) + size > cap:
                raise TraceTooLarge(f"trace {trace_id.hex()} would exceed tenant {tenant!r}'s "
                                    f"{cap} bytes per trace; the request was refused")
        return added

    def _remember(self, tenant: str, added: dict[bytes, int]) -> None:
        seen = self._trace_bytes.setdefault(tenant, OrderedDict())
        for trace_id, size in added.items():
            seen[trace_id] = seen.get(trace_id, 0) + size
            seen.move_to_end(trace_id)
        while len(seen) > _TRACKED_TRACES:
            seen.popitem(last=False)

    def retention(self, tenants: list[str]) -> dict[str, float]:
        """Retention hours per tenant (0: keep)."""
        return {t: self.of(t).retention_hours for t in tenants}

    def sql_enter(self, tenant: str) -> bool:
        """Take one of ``tenant``'s SQL slots; False (and counted as refused) when none is free."""
        cap = self.of(tenant).sql_max_concurrent
        with self._lock:
            running = self._sql_running.get(tenant, 0)
            if cap and running >= cap:
                self.count_sql(tenant, "refused")
                return False
            self._sql_running[tenant] = running + 1
            return True

    def sql_exit(self, tenant: str) -> None:
        with self._lock:
            self._sql_running[tenant] -= 1

    def count_sql(self, tenant: str, outcome: str) -> None:
        if self.on_sql is not None:
            self.on_sql(tenant, outcome).inc()


def _bytes_per_trace(spans: pa.Table) -> dict[bytes, int]:
    """Approximate stored bytes per trace ID: the batch's Arrow size shared out by span count."""
    if spans.num_rows == 0:
        return {}
    per_span = spans.nbytes / spans.num_rows
    counts = pc.value_counts(spans.column("trace_id")).to_pylist()
    return {bytes(c["values"]): int(c["counts"] * per_span) for c in counts}


def load_limits(path: Path | None, settings: Settings) -> TenantLimits:
    base = Limits(retention_hours=settings.retention_hours)
    if path is None:
        return TenantLimits(base, {}, settings.sql_max_concurrent)
    try:
        doc = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise LimitsError(f"{path}: {exc}") from None
    unknown = set(doc) - {"defaults", "tenants"}
    if unknown:
        raise LimitsError(f"{path}: unknown sections {sorted(unknown)}; use [defaults] and [tenants.NAME]")
    defaults = _limits(path, "defaults", doc.get("defaults", {}), base)
    tenants = {name: _limits(path, f"tenants.{name}", raw, defaults)
               for name, raw in doc.get("tenants", {}).items()}
    return TenantLimits(defaults, tenants, settings.sql_max_concurrent)


def _limits(path: Path, where: str, raw: object, base: Limits) -> Limits:
    if not isinstance(raw, dict):
        raise LimitsError(f"{path}: [{where}] is not a table")
    names = {f.name: f.type for f in fields(Limits)}
    extra = set(raw) - set(names)
    if extra:
        raise LimitsError(f"{path}: [{where}]: unknown keys {sorted(extra)}; known: {sorted(names)}")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise LimitsError(f"{path}: [{where}] {key} must be a number >= 0, got {value!r}")
        values[key] = int(value) if names[key] == "int" else float(value)
    return replace(base, **values)
