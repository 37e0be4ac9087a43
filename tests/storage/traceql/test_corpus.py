"""Every query of the TraceQL corpus, and seeded random ones, give the oracle's answer.

The engine runs over the seeded traces split between committed segments and the unflushed tail;
the oracle (``oracle.py``) evaluates the same parsed query span by span in Python.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from spanlake.query.traceql.parser import parse
from spanlake.storage.store import SegmentStore, StoreConfig
from spanlake.storage.traceql.engine import MatchedTrace, TraceQLEngine
from tests.storage.spans import BASE_NS
from tests.storage.traceql import oracle
from tests.storage.traceql.traces import random_traces

CORPUS = [line for line in (Path(__file__).parent / "corpus.traceql").read_text().splitlines()
          if line.strip() and not line.startswith("#")]
LO, HI = BASE_NS - 10**12, BASE_NS + 10**13


@pytest.fixture(scope="module")
def spans() -> pa.Table:
    return random_traces()


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, spans: pa.Table) -> Iterator[TraceQLEngine]:
    store = SegmentStore(Path(tmp_path_factory.mktemp("corpus")), StoreConfig(flush_interval_s=3600))
    quarter = spans.num_rows // 4
    for n in range(4):  # three segments (so segment pruning has something to skip) and the tail
        store.write(spans.slice(n * quarter, quarter if n < 3 else None))
        if n < 3:
            store.flush()
    yield TraceQLEngine(store.reader)
    store.close()


def engine_answer(matches: list[MatchedTrace]) -> list[tuple[bytes, list[tuple[str, list[bytes]]]]]:
    out = []
    for t in matches:
        sets = sorted((repr(s.labels), sorted(t.rows[n]["span_id"] for n in s.spans)) for s in t.spansets)
        out.append((t.trace_id, sets))
    return out


def oracle_answer(found: list[tuple[bytes, list[oracle.OSpanset]]]) -> list[tuple[bytes, Any]]:
    return [(tid, sorted((repr(s.labels), sorted(s.spans)) for s in sets)) for tid, sets in found]


def check(engine: TraceQLEngine, spans: pa.Table, text: str, limit: int = 1000) -> int:
    query = parse(text)
    expected = oracle_answer(oracle.search(spans, query, LO, HI))[:limit]
    got = engine_answer(engine.search(query, LO, HI, limit))
    assert got == expected, text
    return len(expected)


def test_segments_that_cannot_match_are_skipped(engine: TraceQLEngine) -> None:
    from spanlake.storage.traceql.prune import segment_filter

    segments = engine.reader._snapshot().segments
    assert len(segments) == 3
    nowhere = segment_filter([parse('{ span.http.method = "PATCH" && duration > 1s }').pipeline.stages[0]])
    assert nowhere is not None and not any(nowhere(s) for s in segments)
    service = segment_filter([parse('{ resource.service.name = "db" }').pipeline.stages[0]])
    assert service is not None and all(service(s) == ("db" in s.meta["services"]) for s in segments)
    assert segment_filter([parse("{ duration > 1s }").pipeline.stages[0]]) is None


def test_corpus_has_at_least_300_queries() -> None:
    assert len(CORPUS) >= 300


@pytest.mark.parametrize("text", CORPUS)
def test_corpus_query_matches_the_oracle(engine: TraceQLEngine, spans: pa.Table, text: str) -> None:
    check(engine, spans, text)


def test_corpus_is_not_trivially_empty(engine: TraceQLEngine, spans: pa.Table) -> None:
    """Most corpus queries must find something, or agreement would prove little."""
    found = sum(1 for text in CORPUS if oracle.search(spans, parse(text), LO, HI))
    assert found >= 0.7 * len(CORPUS)


@pytest.mark.parametrize("text", ["{}", "{ status = error }", "{} >> { kind = client }", "{} | count() > 2"])
def test_limit_keeps_the_newest_matches(engine: TraceQLEngine, spans: pa.Table, text: str) -> None:
    assert check(engine, spans, text, limit=3) == 3


# --- seeded random queries ---------------------------------------------------------------------
CONDITIONS = [
    'name = "{name}"', "status = {status}", "kind = {kind}", "duration > {ms}ms", "duration < {ms}ms",
    "span.http.status_code = {code}", "span.http.status_code >= {code}", 'span.http.method = "{method}"',
    'resource.service.name = "{service}"', 'resource.region = "{region}"', 'span.cache.hit = {bool}',
    "span.ratio > {ratio}", 'event:name = "exception"', "span:parentID = nil", "resource.region != nil",
    '.region = "{region}"', 'trace:rootService = "{service}"', 'name =~ "{prefix}.*"',
]
VALUES = {"name": ["GET /", "SELECT", "render"], "status": ["ok", "error", "unset"],
          "kind": ["server", "client", "internal"], "ms": [2, 100, 1000], "code": [200, 404, 500],
          "method": ["GET", "POST"], "service": ["frontend", "api", "db", "cache"],
          "region": ["eu", "us"], "bool": ["true", "false"], "ratio": [0.3, 1], "prefix": ["GET", "S", "r"]}
SPANSET_OPS = ["&&", "||", ">", ">>", "<", "<<", "~", "!>", "!>>", "!<", "!<<", "!~",
               "&>", "&>>", "&<", "&<<", "&~"]


def _condition(rng: random.Random, depth: int = 0) -> str:
    if depth < 2 and rng.random() < 0.35:
        op = rng.choice(["&&", "||"])
        inner = f"{_condition(rng, depth + 1)} {op} {_condition(rng, depth + 1)}"
        return f"!({inner})" if rng.random() < 0.2 else f"({inner})"
    template = rng.choice(CONDITIONS)
    return template.format(**{k: rng.choice(v) for k, v in VALUES.items()})


def random_query(rng: random.Random) -> str:
    text = "{ " + _condition(rng) + " }"
    for _ in range(rng.choice([0, 0, 1, 2])):
        text = f"{text} {rng.choice(SPANSET_OPS)} {{ {_condition(rng)} }}"
    tail = rng.choice(["", "", " | count() > 1", " | by(resource.service.name)", " | avg(duration) > 100ms",
                       " | by(kind) | count() > 1", " | coalesce()"])
    return text + tail


@pytest.mark.parametrize("seed", range(150))
def test_random_query_matches_the_oracle(engine: TraceQLEngine, spans: pa.Table, seed: int) -> None:
    check(engine, spans, random_query(random.Random(seed)))


PAGED = [q for q in CORPUS if ">>" in q or "| count()" in q][:40]


@pytest.mark.parametrize("text", PAGED)
def test_small_growing_pages_give_the_same_answer(engine: TraceQLEngine, spans: pa.Table, text: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Candidates are evaluated page by page (2, 8, 8... traces here): order and limit survive."""
    from spanlake.storage.traceql import engine as engine_module

    monkeypatch.setattr(engine_module, "_MIN_PAGE", 2)
    monkeypatch.setattr(engine_module, "_MAX_PAGE", 8)
    check(engine, spans, text)
    check(engine, spans, text, limit=5)


NEWEST_FIRST = [q for q in CORPUS if q.count("{") == 1 and "|" not in q][:80]  # one filter: early stop


@pytest.mark.parametrize("text", NEWEST_FIRST)
def test_newest_segments_first_give_the_same_answer(engine: TraceQLEngine, spans: pa.Table, text: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """With one segment per batch, searches with a limit stop early: order and limit survive."""
    from spanlake.storage import reader as reader_module

    monkeypatch.setattr(reader_module, "FIRST_BATCH_SPANS", 1)
    for limit in (1, 3, 1000):
        check(engine, spans, text, limit=limit)


def test_a_search_answered_by_the_newest_spans_reads_no_older_segment(
        engine: TraceQLEngine, spans: pa.Table, monkeypatch: pytest.MonkeyPatch) -> None:
    from spanlake.storage import reader as reader_module

    monkeypatch.setattr(reader_module, "FIRST_BATCH_SPANS", 1)
    reader = engine.reader
    assert isinstance(reader, reader_module.Reader)
    batches: list[int | None] = []
    original = reader.run_sql_newest_first

    def counted(*args: Any, **kwargs: Any) -> Iterator[tuple[pa.Table, int | None]]:
        for table, bound in original(*args, **kwargs):
            batches.append(bound)
            yield table, bound

    monkeypatch.setattr(reader, "run_sql_newest_first", counted)
    check(engine, spans, "{}", limit=2)  # the tail (the newest quarter) holds the two newest traces
    assert len(batches) == 1 and batches[0] is not None
    batches.clear()
    check(engine, spans, "{}", limit=1000)  # everything: every batch is read
    assert len(batches) == 3 and batches[-1] is None


def test_inspection_stops_at_the_cap_and_says_so(engine: TraceQLEngine, spans: pa.Table) -> None:
    from spanlake.storage.traceql.engine import Inspection, TraceQLEngine

    capped = TraceQLEngine(engine.reader, max_inspected_traces=10)
    inspection = Inspection()
    query = parse("{} >> {}")
    got = engine_answer(capped.search(query, LO, HI, 1000, inspection))
    assert inspection.truncated and inspection.traces == 10
    expected = oracle_answer(oracle.search(spans, query, LO, HI))
    newest_ten = {t for t, _ in oracle_answer(oracle.search(spans, parse("{}"), LO, HI))[:10]}
    assert got == [e for e in expected if e[0] in newest_ten]
