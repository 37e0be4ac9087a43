from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from bench import wire
from bench.generate import Manifest, generate

NOW_NS = 1_800_000_000 * 10**9
SPANS = 20_000


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Manifest, list[tuple[str, Span]]]:
    out = tmp_path_factory.mktemp("bench")
    manifest = generate(SPANS, out, seed=7, now_ns=NOW_NS)
    spans = []
    for payload, count in wire.read_records(Path(manifest.requests_file)):
        request = ExportTraceServiceRequest.FromString(payload)
        in_request = [
            (rs.resource.attributes[0].value.string_value, span)
            for rs in request.resource_spans
            for ss in rs.scope_spans
            for span in ss.spans
        ]
        assert len(in_request) == count
        spans.extend(in_request)
    return manifest, spans


def test_requests_hold_every_span_in_batches_of_a_thousand(generated):
    manifest, spans = generated
    assert len(spans) == SPANS == manifest.spans
    assert manifest.requests == SPANS // 1000


def test_traces_are_ten_span_trees_with_one_root(generated):
    _, spans = generated
    by_trace: dict[bytes, list[Span]] = {}
    for _, span in spans:
        by_trace.setdefault(span.trace_id, []).append(span)
    assert len(by_trace) == SPANS // 10
    for trace in by_trace.values():
        assert len(trace) == 10
        ids = {s.span_id for s in trace}
        roots = [s for s in trace if not s.parent_span_id]
        assert len(roots) == 1
        assert all(s.parent_span_id in ids for s in trace if s.parent_span_id)
        children = [s for s in trace if s.parent_span_id]
        parent_of = {s.span_id: s for s in trace}
        for child in children:
            parent = parent_of[child.parent_span_id]
            assert parent.start_time_unix_nano <= child.start_time_unix_nano
            assert child.end_time_unix_nano <= parent.end_time_unix_nano


def test_spans_have_the_benchmark_shape(generated):
    manifest, spans = generated
    services = Counter(service for service, _ in spans)
    assert set(services) == set(manifest.services) and len(services) == 10
    ops_per_service = {svc: {s.name for name, s in spans if name == svc} for svc in services}
    assert all(18 <= len(ops) <= 22 for ops in ops_per_service.values())
    keys, values = set(), set()
    for _, span in spans:
        span_keys = [a.key for a in span.attributes]
        assert len(span_keys) == len(set(span_keys)) == 11
        keys.update(span_keys)
        values.update(a.value.string_value for a in span.attributes)
        assert manifest.start_ns <= span.start_time_unix_nano < span.end_time_unix_nano <= manifest.end_ns
    assert len(keys) == 97 and len(values) == 1000
    errors = sum(s.status.code == Status.STATUS_CODE_ERROR for _, s in spans) / len(spans)
    events = sum(len(s.events) == 1 for _, s in spans) / len(spans)
    assert 0.02 < errors < 0.04
    assert 0.08 < events < 0.12


def test_manifest_names_existing_and_absent_traces(generated):
    manifest, spans = generated
    present = {s.trace_id.hex() for _, s in spans}
    assert len(manifest.existing_trace_ids) == 100
    assert set(manifest.existing_trace_ids) <= present
    assert not set(manifest.absent_trace_ids) & present


def test_manifest_counts_what_each_search_must_find(generated):
    manifest, spans = generated
    q = manifest.searches
    recent = {
        s.trace_id
        for svc, s in spans
        if svc == q.service and s.name == q.operation and s.start_time_unix_nano >= q.recent_start_ns
    }
    tagged = {s.trace_id for _, s in spans if any(a.key == q.attr_key and a.value.string_value == q.attr_value
                                                   for a in s.attributes)}  # fmt: skip
    slow = {
        s.trace_id
        for svc, s in spans
        if svc == q.slow_service and s.end_time_unix_nano - s.start_time_unix_nano > q.slow_threshold_ns
    }
    assert (q.recent_traces, q.attr_traces, q.slow_traces) == (len(recent), len(tagged), len(slow))
    assert q.recent_traces > 0 and q.slow_traces > 0


def test_same_seed_gives_the_same_bytes(tmp_path, generated):
    manifest, _ = generated
    again = generate(SPANS, tmp_path, seed=7, now_ns=NOW_NS)
    assert Path(again.requests_file).read_bytes() == Path(manifest.requests_file).read_bytes()
    other = generate(SPANS, tmp_path / "other", seed=8, now_ns=NOW_NS)
    assert Path(other.requests_file).read_bytes() != Path(manifest.requests_file).read_bytes()
