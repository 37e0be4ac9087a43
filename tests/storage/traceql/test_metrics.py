"""TraceQL metrics against the oracle: the matched spans it finds, bucketed and aggregated here."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from spanlake.query.traceql.parser import parse
from spanlake.storage.store import SegmentStore, StoreConfig
from spanlake.storage.traceql import model as m
from spanlake.storage.traceql.engine import TraceQLEngine
from spanlake.storage.traceql.errors import TraceQLError
from spanlake.storage.traceql.metrics import query_range
from tests.storage.spans import BASE_NS
from tests.storage.traceql import oracle
from tests.storage.traceql.traces import random_traces

LO, HI = BASE_NS, BASE_NS + 3600 * 10**9
STEP = 120 * 10**9


@pytest.fixture(scope="module")
def spans() -> pa.Table:
    return random_traces()


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, spans: pa.Table) -> Iterator[TraceQLEngine]:
    store = SegmentStore(Path(tmp_path_factory.mktemp("metrics")), StoreConfig(flush_interval_s=3600))
    store.write(spans.slice(0, spans.num_rows // 3))
    store.flush()
    store.write(spans.slice(spans.num_rows // 3))
    yield TraceQLEngine(store.reader)
    store.close()


def matched_spans(spans: pa.Table, query: m.Query) -> list[tuple[dict[str, Any], oracle.TraceView]]:
    rows = {r["span_id"]: r for r in spans.to_pylist()}
    out = []
    for _, sets in oracle.search(spans, query, LO, HI - 1):
        ids = set().union(*(s.spans for s in sets))
        trace_id = rows[next(iter(ids))]["trace_id"]
        view = oracle.TraceView([r for r in rows.values() if r["trace_id"] == trace_id])
        out.extend((rows[i], view) for i in sorted(ids))
    return out


def expected_groups(spans: pa.Table, text: str) -> dict[tuple[Any, ...], dict[int, list[float]]]:
    """by-labels -> bucket start (ms) -> the values of the matched spans in it."""
    query = parse(text)
    metric = query.metrics
    assert isinstance(metric, m.MetricsAggregate)
    groups: dict[tuple[Any, ...], dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for span, view in matched_spans(spans, query):
        labels = tuple((e.label(), oracle.value_of(e, span, view)) for e in metric.by  # type: ignore[union-attr]
                       if oracle.value_of(e, span, view) is not None)
        ts = (LO + (span["start_time_unix_nano"] - LO) // STEP * STEP) // 10**6
        value = oracle.value_of(metric.expr, span, view) if metric.expr is not None else 1.0
        if metric.expr == m.Intrinsic("duration"):
            value = value / 1e9
        groups[labels][ts].append(value)
    return groups


def got_series(engine: TraceQLEngine, text: str) -> dict[tuple[Any, ...], dict[int, float]]:
    return {s.labels: s.samples for s in query_range(engine, parse(text), LO, HI, STEP, 1)}


@pytest.mark.parametrize("text", [
    "{} | count_over_time()",
    "{} | count_over_time() by (resource.service.name)",
    "{ status = error } | count_over_time() by (name, kind)",
    "{ kind = server } >> { kind = client } | count_over_time() by (resource.service.name)",
    "{} | count_over_time() by (span.http.status_code)",
])
def test_count_over_time_counts_matched_spans(engine: TraceQLEngine, spans: pa.Table, text: str) -> None:
    expected = {labels or (("__name__", "count_over_time"),): {ts: float(len(v)) for ts, v in b.items()}
                for labels, b in expected_groups(spans, text).items()}
    got = {k: {ts: v for ts, v in s.items() if v} for k, s in got_series(engine, text).items()}
    assert got == expected and expected


def test_rate_is_count_per_second(engine: TraceQLEngine, spans: pa.Table) -> None:
    counts = got_series(engine, "{} | count_over_time()")[(("__name__", "count_over_time"),)]
    rates = got_series(engine, "{} | rate()")[(("__name__", "rate"),)]
    assert rates == {ts: n / (STEP / 1e9) for ts, n in counts.items()}
    assert len(rates) == 30  # dense: every step of the hour, zeros included


@pytest.mark.parametrize(("fn", "reduce"), [("sum", math.fsum), ("min", min), ("max", max),
                                             ("avg", lambda v: math.fsum(v) / len(v))])
@pytest.mark.parametrize("field", ["duration", "span.http.status_code"])
def test_over_time_aggregates(engine: TraceQLEngine, spans: pa.Table, fn: str, reduce: Any,
                              field: str) -> None:
    text = f"{{ {field} != nil }} | {fn}_over_time({field}) by (resource.service.name)"
    if field == "duration":
        text = f"{{}} | {fn}_over_time(duration) by (resource.service.name)"
    groups = expected_groups(spans, text)
    expected = {labels: {ts: reduce(v) for ts, v in b.items()} for labels, b in groups.items()}
    got = got_series(engine, text)
    assert got.keys() == expected.keys()
    for labels, samples in expected.items():
        assert got[labels] == pytest.approx(samples)


def test_quantiles_interpolate_like_quantile_cont(engine: TraceQLEngine, spans: pa.Table) -> None:
    text = "{} | quantile_over_time(duration, 0.5, 0.9) by (resource.service.name)"
    expected = expected_groups(spans, text.replace("quantile_over_time(duration, 0.5, 0.9)",
                                                   "max_over_time(duration)"))
    got = got_series(engine, text)
    for labels, buckets in expected.items():
        for q in (0.5, 0.9):
            series = got[(*labels, ("p", q))]
            for ts, values in buckets.items():
                values = sorted(values)
                pos = q * (len(values) - 1)
                lo, frac = int(pos), pos - int(pos)
                want = values[lo] + (values[min(lo + 1, len(values) - 1)] - values[lo]) * frac
                assert series[ts] == pytest.approx(want)


def test_histogram_buckets_are_powers_of_two_seconds(engine: TraceQLEngine, spans: pa.Table) -> None:
    got = got_series(engine, "{} | histogram_over_time(duration)")
    expected: dict[float, int] = defaultdict(int)
    for row in spans.to_pylist():
        expected[2.0 ** math.ceil(math.log2(row["duration_nano"] / 1e9))] += 1
    assert {labels[0][1]: sum(s.values()) for labels, s in got.items()} == expected


def test_topk_keeps_the_largest_series(engine: TraceQLEngine) -> None:
    all_series = got_series(engine, "{} | count_over_time() by (name)")
    top = got_series(engine, "{} | count_over_time() by (name) | topk(2)")
    totals = sorted((sum(s.values()) for s in all_series.values()), reverse=True)
    assert sorted((sum(s.values()) for s in top.values()), reverse=True) == totals[:2]


def test_compare_splits_selection_and_baseline(engine: TraceQLEngine, spans: pa.Table) -> None:
    got = got_series(engine, "{} | compare({ status = error }, 3)")
    rows = spans.to_pylist()
    errors = sum(1 for r in rows if r["status_code"] == 2)
    assert sum(got[(("__meta_type", "selection"), ("status", "error"))].values()) == errors
    assert sum(got[(("__meta_type", "selection_total"), ("name", None))].values()) == errors
    assert sum(got[(("__meta_type", "baseline_total"), ("name", None))].values()) == len(rows) - errors
    services = [k for k in got if k[0] == ("__meta_type", "baseline") and k[1][0] == "resource.service.name"]
    assert len(services) == 3  # the top 3 of 4 services


def test_metrics_errors(engine: TraceQLEngine) -> None:
    with pytest.raises(TraceQLError, match="not a metrics query"):
        query_range(engine, parse("{}"), LO, HI, STEP)
    with pytest.raises(TraceQLError, match="too many buckets"):
        query_range(engine, parse("{} | rate()"), LO, HI, 10**6)
    with pytest.raises(TraceQLError, match="need a number"):
        query_range(engine, parse("{} | sum_over_time(name)"), LO, HI, STEP)
