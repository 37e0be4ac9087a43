"""docs/traceql.md: every ``traceql`` example runs and agrees with the oracle on the seeded traces."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from spanlake.query.traceql.parser import parse
from spanlake.storage.store import SegmentStore, StoreConfig
from spanlake.storage.traceql.engine import TraceQLEngine
from spanlake.storage.traceql.metrics import query_range
from tests.docs.markdown import DOCS, fenced_blocks
from tests.storage.spans import BASE_NS
from tests.storage.traceql import oracle
from tests.storage.traceql.test_corpus import CORPUS, engine_answer, oracle_answer
from tests.storage.traceql.traces import random_traces

EXAMPLES = [line.strip() for block in fenced_blocks((DOCS / "traceql.md").read_text())
            if block.lang == "traceql" for line in block.text.splitlines() if line.strip()]
LO, HI = BASE_NS, BASE_NS + 3600 * 10**9


@pytest.fixture(scope="module")
def spans() -> pa.Table:
    return random_traces()


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, spans: pa.Table) -> Iterator[TraceQLEngine]:
    store = SegmentStore(Path(tmp_path_factory.mktemp("docs")), StoreConfig(flush_interval_s=3600))
    store.write(spans)
    yield TraceQLEngine(store.reader)
    store.close()


def test_the_page_has_examples_and_states_the_corpus_size() -> None:
    assert len(EXAMPLES) >= 25
    stated = re.search(r"the (\d+) queries of `tests/storage/traceql/corpus.traceql`",
                       (DOCS / "traceql.md").read_text())
    assert stated and int(stated.group(1)) == len(CORPUS)


@pytest.mark.parametrize("text", EXAMPLES)
def test_documented_query_runs_as_described(engine: TraceQLEngine, spans: pa.Table, text: str) -> None:
    query = parse(text)
    if query.metrics is not None:
        assert query_range(engine, query, LO, HI, 60 * 10**9, 1), text
        return
    expected = oracle_answer(oracle.search(spans, query, LO, HI))
    assert expected, f"{text} finds nothing in the test traces: pick an example that shows something"
    assert engine_answer(engine.search(query, LO, HI, 1000)) == expected
