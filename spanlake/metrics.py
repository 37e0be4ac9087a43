"""The operator's metrics, in Prometheus format (``prometheus-client``), served at ``/metrics``.

Names follow the OpenTelemetry Collector's receiver metrics and Jaeger's where they have an
equivalent (``otelcol_receiver_accepted_spans`` -> ``spanlake_receiver_accepted_spans_total``,
``jaeger_collector_spans_received_total`` -> ``spanlake_spans_received_total``, ``jaeger_query_latency``
-> ``spanlake_query_latency_seconds``); docs/operations.md lists every one. Each ``Metrics`` has its
own registry, so tests can build several servers in one process.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

import pyarrow as pa
from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from spanlake.auth import Decision
from spanlake.observe import api_of
from spanlake.storage.store import SegmentStore

_SIZE_BUCKETS = (1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9)
_SPAN_BUCKETS = (10, 100, 1e3, 1e4, 1e5, 1e6)
_REASONS = {400: "bad_tenant", 401: "unauthenticated", 403: "forbidden"}
_CONTENT_REFUSALS = {400: "bad_request", 413: "too_large", 415: "unsupported_media_type"}


class Metrics:
    def __init__(self) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]  # no *_created series: noise
        self.registry = CollectorRegistry()
        r = self.registry
        ProcessCollector(registry=r)  # process_resident_memory_bytes, process_open_fds, CPU
        self.received = Counter("spanlake_spans_received", "Spans received (accepted or refused).",
                                ["protocol", "tenant"], registry=r)
        self.accepted = Counter("spanlake_receiver_accepted_spans",
                                "Spans durably stored (acknowledged).", ["protocol", "tenant"], registry=r)
        self.refused_spans = Counter("spanlake_receiver_refused_spans",
                                     "Decoded spans refused, by reason (overloaded, rate_limited, "
                                     "trace_too_large).", ["protocol", "tenant", "reason"], registry=r)
        self.refused_requests = Counter("spanlake_refused_requests",
                                        "Requests refused before reaching storage, by reason "
                                        "(unauthenticated, forbidden, bad_tenant, bad_request, "
                                        "too_large, unsupported_media_type).",
                                        ["listener", "tenant", "reason"], registry=r)
        self.fsync = Histogram("spanlake_wal_fsync_duration_seconds", "Duration of one WAL fsync.",
                               buckets=(1e-4, 5e-4, 1e-3, 5e-3, 0.01, 0.05, 0.1, 0.5, 1, 5), registry=r)
        self.flush_seconds = Histogram("spanlake_flush_duration_seconds",
                                       "Duration of one flush of the tail into segments.", registry=r)
        self.flush_bytes = Histogram("spanlake_flush_size_bytes", "Segment bytes written by one flush.",
                                     buckets=_SIZE_BUCKETS, registry=r)
        self.flush_spans = Histogram("spanlake_flush_size_spans", "Spans written by one flush.",
                                     buckets=_SPAN_BUCKETS, registry=r)
        self.compaction_seconds = Histogram("spanlake_compaction_duration_seconds",
                                            "Duration of one compaction run that merged segments.",
                                            buckets=(0.1, 0.5, 1, 5, 10, 30, 60, 300, 900), registry=r)
        self.compaction_spans = Histogram("spanlake_compaction_size_spans",
                                          "Spans rewritten by one compaction run.",
                                          buckets=_SPAN_BUCKETS, registry=r)
        self.query_latency = Histogram("spanlake_query_latency_seconds",
                                       "Query-port request latency, by API and route template.",
                                       ["api", "route", "status"], registry=r)
        self.sql = Counter("spanlake_sql_queries", "SQL queries by outcome (ok, error, interrupted, "
                           "refused).", ["tenant", "outcome"], registry=r)

    def observe_request(self, listener: str, route: str, status: int, seconds: float, tenant: str) -> None:
        """One served HTTP request: query-port latency; ingest requests refused for their content."""
        if listener == "query":
            self.query_latency.labels(api_of(route), route, str(status)).observe(seconds)
        elif tenant and status in _CONTENT_REFUSALS and listener != "admin":
            # Auth refusals are counted by the auth layer (no tenant here); these passed it.
            self.refused_requests.labels(listener, tenant, _CONTENT_REFUSALS[status]).inc()

    def grpc_refused(self, listener: str, tenant: str, code: str) -> None:
        self.refused_requests.labels(listener, tenant, code).inc()

    def watch_store(self, store: SegmentStore) -> None:
        store.events.fsync = self.fsync.observe
        store.events.flush = self._flushed
        store.events.compaction = self._compacted
        self.registry.register(_StoreCollector(store))

    def _flushed(self, seconds: float, spans: int, size: int) -> None:
        self.flush_seconds.observe(seconds)
        self.flush_spans.observe(spans)
        self.flush_bytes.observe(size)

    def _compacted(self, seconds: float, inputs: int, spans: int) -> None:
        self.compaction_seconds.observe(seconds)
        self.compaction_spans.observe(spans)

    def ingest_outcome(self, protocol: str, tenant: str, spans: pa.Table, outcome: str) -> None:
        """``outcome``: "accepted", or the reason the spans were refused."""
        self.received.labels(protocol, tenant).inc(spans.num_rows)
        if outcome == "accepted":
            self.accepted.labels(protocol, tenant).inc(spans.num_rows)
        else:
            self.refused_spans.labels(protocol, tenant, outcome).inc(spans.num_rows)

    def request_refused(self, listener: str, where: str, decision: Decision) -> None:
        tenant = decision.principal.tenant if decision.principal else "unknown"
        reason = _REASONS.get(decision.status, "other")
        self.refused_requests.labels(listener, tenant, reason).inc()


class _StoreCollector(Collector):
    """Read at scrape time: WAL bytes, and committed segments and bytes per tenant and partition."""

    def __init__(self, store: SegmentStore) -> None:
        self.store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        wal = GaugeMetricFamily("spanlake_wal_bytes", "Bytes in WAL files not yet covered by a flush.")
        wal.add_metric([], self.store.wal_bytes())
        yield wal
        count: dict[tuple[str, str], int] = defaultdict(int)
        size: dict[tuple[str, str], int] = defaultdict(int)
        for seg in self.store.catalog.segments():
            date, hour = seg.path.rsplit("/", 3)[1:3]
            key = (seg.tenant, f"{date}/{hour}")
            count[key] += 1
            size[key] += seg.size or 0  # as listed: no request per segment on a bucket
        segments = GaugeMetricFamily("spanlake_segments", "Committed segments per tenant and partition.",
                                     labels=["tenant", "partition"])
        nbytes = GaugeMetricFamily("spanlake_segment_bytes",
                                   "Bytes of committed segments per tenant and partition.",
                                   labels=["tenant", "partition"])
        for key in sorted(count):
            segments.add_metric(list(key), count[key])
            nbytes.add_metric(list(key), size[key])
        yield segments
        yield nbytes

