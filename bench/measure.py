"""What both engines report, in one shape, so ``run.py`` can put them side by side."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# The searches of issue 6, in table order: (key, what the table row says).
SEARCHES: list[tuple[str, str]] = [
    ("service_operation", "service + operation, last 15 min, limit 20"),
    ("attribute", "one attribute equality, any service, 1 h, limit 20"),
    ("no_match", "search that matches nothing, 1 h"),
    ("slow", "spans slower than the service's p99, 1 h, limit 20"),
    ("percentiles", "p50/p99 duration per service and operation, 1 h (SQL)"),
    # TraceQL through /tempo (issue 10); the peer answers the same questions in SQL, except the
    # structural one, which would need a recursive ancestor walk.
    ("traceql_service_name", "TraceQL {service && name}, last 15 min, limit 20"),
    ("traceql_attribute", "TraceQL {span.attr = value}, any service, 1 h, limit 20"),
    ("traceql_duration", "TraceQL {duration > 1s}, 1 h, limit 20"),
    ("traceql_structural", "TraceQL {service} >> {status = error}, 1 h, limit 20"),
    ("traceql_rate", "TraceQL rate() by (service) of all spans, 1 h, step 60 s"),
]
SEARCH_RUNS = 10


def ms_percentile(seconds: list[float], q: float) -> float:
    return float(np.percentile(np.array(seconds) * 1000.0, q)) if seconds else float("nan")


def timed(call: Callable[[], Any], runs: int) -> tuple[list[float], Any]:
    """Wall seconds of each of ``runs`` calls, and the last call's result."""
    times, result = [], None
    for _ in range(runs):
        began = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - began)
    return times, result


@dataclass
class Result:
    """One engine's numbers. Absent (None) means not measured; ``notes`` says why."""

    engine: str
    version: str
    spans: int = 0
    ingest_wall_s: float | None = None
    ingest_cpu_s: float | None = None
    ingest_peak_rss: int | None = None
    storage_bytes: int | None = None
    by_id_ms: dict[str, float] = field(default_factory=dict)  # hit_p50, hit_p99, miss_p50, miss_p99
    by_id_found: int | None = None  # how many of the existing IDs came back with all their spans
    searches_ms: dict[str, float] = field(default_factory=dict)  # key -> p50
    searches_found: dict[str, int] = field(default_factory=dict)  # key -> traces (or rows) returned
    search_peak_rss: int | None = None
    extra: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def spans_per_s(self) -> float | None:
        return self.spans / self.ingest_wall_s if self.ingest_wall_s else None

    @property
    def spans_per_cpu_s(self) -> float | None:
        return self.spans / self.ingest_cpu_s if self.ingest_cpu_s else None

    @property
    def bytes_per_span(self) -> float | None:
        return self.storage_bytes / self.spans if self.storage_bytes is not None and self.spans else None
