"""Values read for select(), by() and aggregates keep their OTLP type on the way out of DuckDB."""

from __future__ import annotations

from pathlib import Path

import pytest

from spanlake.query.traceql.parser import parse
from spanlake.storage.attributes import attrs
from spanlake.storage.rows import spans_table
from spanlake.storage.store import SegmentStore, StoreConfig
from spanlake.storage.traceql.engine import TraceQLEngine
from tests.storage.spans import BASE_NS, span

VALUES = {"s": "text: with a colon", "i": -(2**63), "f": 0.1 + 0.2, "big": 1e300, "b": False,
          "bytes": b"\x00\xffraw", "array": [1, "two", 3.5, [True]], "map": {"k": {"n": None}},
          "empty_text": ""}


@pytest.mark.parametrize("flushed", [False, True], ids=["tail", "segment"])
def test_selected_values_round_trip(tmp_path: Path, flushed: bool) -> None:
    store = SegmentStore(tmp_path, StoreConfig(flush_interval_s=3600))
    try:
        store.write(spans_table([span(1, 1, "svc", span_attributes=attrs(VALUES))]))
        if flushed:
            store.flush()
        fields = ", ".join(f"span.{k}" for k in VALUES) + ", span.missing"
        (match,) = TraceQLEngine(store.reader).search(parse(f"{{}} | select({fields})"), 0, 2**62, 10)
        row = match.rows[0]
        got = {spec.key: row[f"v{n}"] for n, spec in enumerate(match.values)}
        assert got == {**VALUES, "missing": None}
        assert isinstance(got["i"], int) and isinstance(got["f"], float) and got["b"] is False
    finally:
        store.close()


def test_group_by_keeps_types_apart(tmp_path: Path) -> None:
    """int 1, double 1.0, string "1" and true are four groups, as four different values."""
    store = SegmentStore(tmp_path, StoreConfig(flush_interval_s=3600))
    try:
        rows = [span(1, n, "svc", start=BASE_NS + n, span_attributes=attrs({"v": v}))
                for n, v in enumerate([1, 1.0, "1", True, 1], start=1)]
        store.write(spans_table(rows))
        (match,) = TraceQLEngine(store.reader).search(parse("{} | by(span.v)"), 0, 2**62, 10)
        groups = sorted((repr(s.labels[0][1]), len(s.spans)) for s in match.spansets)
        assert groups == [("'1'", 1), ("1", 2), ("1.0", 1), ("True", 1)]
    finally:
        store.close()
