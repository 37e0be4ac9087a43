"""Jaeger searches as spanset filters of the query model, run by the TraceQL engine."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from spanlake.storage.api import TraceQuery
from spanlake.storage.store import SegmentStore, StoreConfig
from spanlake.storage.traceql import model as m
from spanlake.storage.traceql.jaeger import to_filter
from tests.storage.matching import span_has_marks, span_matches_tags
from tests.storage.spans import BASE_NS
from tests.storage.traceql.traces import NAMES, SERVICES, random_traces


@pytest.mark.parametrize(("tags", "expected"), [
    ({"error": "true"}, m.BinaryOp("=", m.Intrinsic("status"), m.Static("status", "error"))),
    ({"error": "FALSE"}, m.BinaryOp("!=", m.Intrinsic("status"), m.Static("status", "error"))),
    ({"error": "maybe"}, m.TagText("error", "maybe")),
    ({"span.status": "STATUS_CODE_OK"}, m.BinaryOp("=", m.Intrinsic("status"), m.Static("status", "ok"))),
    ({"span.status": "broken"}, m.Static("bool", False)),
    ({"span.kind": "server"}, m.BinaryOp("=", m.Intrinsic("kind"), m.Static("kind", "server"))),
    ({"span.kind": "SPAN_KIND_"}, m.BinaryOp("=", m.Intrinsic("kind"), m.Static("kind", "unspecified"))),
    ({"scope.name": "lib"}, m.BinaryOp("=", m.Intrinsic("instrumentation:name"), m.Static("string", "lib"))),
    ({"resource.host": "h1"}, m.TagText("host", "h1", resource_only=True)),
    ({"http.status_code": "500"}, m.TagText("http.status_code", "500")),
])
def test_special_tag_keys_become_intrinsics(tags: dict[str, str], expected: m.FieldExpr) -> None:
    spanset, _, _ = to_filter(TraceQuery(attributes=tags))
    assert spanset.expr == expected


def test_a_mark_is_an_event_name_or_an_attribute_key() -> None:
    spanset, _, _ = to_filter(TraceQuery(marks=("retried",)))
    nil = m.Static("nil", None)
    assert spanset.expr == m.BinaryOp(
        "||", m.BinaryOp("=", m.Intrinsic("event:name"), m.Static("string", "retried")),
        m.BinaryOp("||", m.BinaryOp("!=", m.Attribute("span", "retried"), nil),
                   m.BinaryOp("!=", m.Attribute("resource", "retried"), nil)))


def test_fields_become_one_filter_and_a_window() -> None:
    spanset, lo, hi = to_filter(TraceQuery(service_name="api", operation_name="GET", span_kind=2,
                                           duration_min_ns=5, start_time_min_ns=10, start_time_max_ns=20))
    assert (lo, hi) == (10, 20)
    assert spanset.expr == m.BinaryOp(
        "&&",
        m.BinaryOp("&&", m.BinaryOp("=", m.Attribute("resource", "service.name"), m.Static("string", "api")),
                   m.BinaryOp("=", m.Intrinsic("name"), m.Static("string", "GET"))),
        m.BinaryOp("&&", m.BinaryOp("=", m.Intrinsic("kind"), m.Static("kind", "server")),
                   m.BinaryOp(">=", m.Intrinsic("duration"), m.Static("duration", 5))))


def test_a_thousand_tags_compile(tmp_path: Path) -> None:
    """Conditions form a balanced tree, so a search with many tags never recurses deeply."""
    store = SegmentStore(tmp_path, StoreConfig(flush_interval_s=3600))
    try:
        tags = {f"k{n}": "v" for n in range(1000)}
        assert store.find_trace_ids(TraceQuery(attributes=tags)) == []
    finally:
        store.close()


@pytest.fixture(scope="module")
def spans() -> pa.Table:
    return random_traces(seed=11)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, spans: pa.Table) -> Iterator[SegmentStore]:
    s = SegmentStore(Path(tmp_path_factory.mktemp("jaeger")), StoreConfig(flush_interval_s=3600))
    s.write(spans.slice(0, spans.num_rows // 2))
    s.flush()
    s.write(spans.slice(spans.num_rows // 2))
    yield s
    s.close()


def expected_ids(spans: pa.Table, q: TraceQuery) -> list[bytes]:
    """Jaeger's semantics span by span (tests/storage/matching.py), newest matching span first."""
    latest: dict[bytes, int] = {}
    for row in spans.to_pylist():
        start = row["start_time_unix_nano"]
        if (q.service_name and row["service_name"] != q.service_name) or \
                (q.operation_name and row["name"] != q.operation_name) or \
                (q.duration_min_ns is not None and row["duration_nano"] < q.duration_min_ns) or \
                (q.start_time_min_ns is not None and start < q.start_time_min_ns) or \
                not span_matches_tags(row, q.attributes) or not span_has_marks(row, q.marks):
            continue
        latest[row["trace_id"]] = max(latest.get(row["trace_id"], start), start)
    return sorted(latest, key=lambda t: (-latest[t], t))[:q.search_depth]


MARK_WORDS = ["exception", "retry", "http.method", "region", "cache.hit", "nope"]


@pytest.mark.parametrize("seed", range(40))
def test_random_jaeger_search_matches_the_span_by_span_reference(store: SegmentStore, spans: pa.Table,
                                                                 seed: int) -> None:
    rng = random.Random(seed)
    tags = dict(rng.sample([("http.status_code", "500"), ("http.method", "GET"), ("error", "true"),
                            ("region", "eu"), ("resource.region", "us"), ("cache.hit", "true"),
                            ("ratio", "0.25"), ("span.kind", "client"), ("exception.type", "IOError"),
                            ("link.kind", "follows"), ("scope.name", "manual")], rng.randint(0, 2)))
    q = TraceQuery(service_name=rng.choice([None, *SERVICES]), operation_name=rng.choice([None, *NAMES[:3]]),
                   attributes=tags, duration_min_ns=rng.choice([None, 10**8]),
                   start_time_min_ns=rng.choice([None, BASE_NS + 400 * 10**9]),
                   search_depth=rng.choice([3, 100]),
                   # Zipkin's bare annotationQuery words: event names and attribute keys.
                   marks=tuple(rng.sample(MARK_WORDS, rng.choice([0, 0, 1, 2]))))
    assert store.find_trace_ids(q) == expected_ids(spans, q)
