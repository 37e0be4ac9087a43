from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from bench.generate import Manifest, generate
from bench.peer_clickhouse import Peer, decode_batch, record_batches

NOW_NS = 1_800_000_000 * 10**9


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Manifest, Peer]:
    out = tmp_path_factory.mktemp("peer")
    manifest = generate(5_000, out / "data", seed=3, now_ns=NOW_NS)
    peer = Peer(out / "chdb")
    for offset, requests, _ in record_batches(Path(manifest.requests_file), 2_000):
        payload, _cpu = decode_batch(manifest.requests_file, offset, requests)
        peer.insert(pa.ipc.open_stream(payload).read_all())
    return manifest, peer


def test_every_span_lands_in_otel_traces_with_its_service(loaded):
    manifest, peer = loaded
    rows = peer.sql("SELECT ServiceName, count() FROM otel.otel_traces GROUP BY ServiceName")
    assert sum(int(count) for _, count in rows) == manifest.spans
    assert {name for name, _ in rows} == set(manifest.services)


def test_lookup_table_gives_every_trace_its_time_range(loaded):
    manifest, peer = loaded
    [[traces]] = peer.sql("SELECT uniqExact(TraceId) FROM otel.otel_traces_trace_id_ts")
    assert int(traces) == manifest.traces


def test_trace_by_id_without_time_range_returns_the_whole_trace(loaded):
    manifest, peer = loaded
    assert all(len(peer.trace(trace_id)) == 10 for trace_id in manifest.existing_trace_ids[:5])
    assert peer.trace(manifest.absent_trace_ids[0]) == []


def test_searches_find_what_the_manifest_counted(loaded):
    manifest, peer = loaded
    q = manifest.searches
    slow = peer.find_traces(f"ServiceName = '{q.slow_service}' AND Duration > {q.slow_threshold_ns}",
                            manifest.start_ns, manifest.end_ns, limit=1000)  # fmt: skip
    assert len(slow) == q.slow_traces
    recent = peer.find_traces(f"ServiceName = '{q.service}' AND SpanName = '{q.operation}'",
                              q.recent_start_ns, manifest.end_ns, limit=20)  # fmt: skip
    assert len(recent) == min(20, q.recent_traces)
    nothing = peer.find_traces(f"SpanAttributes['{q.nomatch_key}'] = '{q.nomatch_value}'",
                               manifest.start_ns, manifest.end_ns)  # fmt: skip
    assert nothing == set()


def test_percentiles_cover_every_service_and_operation(loaded):
    manifest, peer = loaded
    rows = peer.percentiles(manifest.start_ns, manifest.end_ns)
    assert sum(int(row[4]) for row in rows) == manifest.spans
    assert all(int(row[2]) <= int(row[3]) for row in rows)


def test_rate_by_service_counts_every_span_once(loaded):
    manifest, peer = loaded
    rows = peer.rate_by_service(manifest.start_ns, manifest.end_ns)
    assert {name for name, _ in rows} == set(manifest.services)
    per_minute = [float(rate) for _, points in rows for _, rate in points]
    assert sum(per_minute) * 60 == pytest.approx(manifest.spans)
