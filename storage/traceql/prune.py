"""Which segments a TraceQL search can skip before DuckDB opens them, from their footers and sidecars.

A span matches a filter only if it satisfies each top-level ``&&`` conjunct of it. Conjuncts of the
form ``attribute = "text"`` need that string pair in the segment's Bloom filter (every level goes into
it, keyed by the attribute name without its scope), ``resource.service.name = "x"`` needs ``x`` among
the segment's services and ``name = "x"`` among its operations. Candidate traces come only from rows
that match one of the query's filters, so a segment that can match none of them is skipped. (Not
when a filter reads trace-level intrinsics: those need every span of the trace.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from spanlake.storage.bloom import string_pair
from spanlake.storage.traceql import model as m

if TYPE_CHECKING:
    from spanlake.storage.segments import Segment

SegmentTest = Callable[["Segment"], bool]
_SERVICE = m.Attribute("resource", "service.name")


def segment_filter(filters: list[m.SpansetFilter]) -> SegmentTest | None:
    """A test that keeps the segments where some filter may match; None when any may match anywhere."""
    needs = [list(_needs(f.expr)) for f in filters]
    if not needs or any(not n for n in needs):
        return None

    def keep(seg: Segment) -> bool:
        return any(all(test(seg) for test in tests) for tests in needs)

    return keep


def _needs(expr: m.FieldExpr) -> Iterator[SegmentTest]:
    if isinstance(expr, m.BinaryOp) and expr.op == "&&":
        yield from _needs(expr.lhs)
        yield from _needs(expr.rhs)
        return
    if not (isinstance(expr, m.BinaryOp) and expr.op == "="):
        return
    for a, b in ((expr.lhs, expr.rhs), (expr.rhs, expr.lhs)):
        if not (isinstance(b, m.Static) and b.type == "string"):
            continue
        value = str(b.value)
        if a == _SERVICE and value:
            yield _service_test(value)
        elif isinstance(a, m.Attribute):
            yield _bloom_test(a.name, value)
        elif a == m.Intrinsic("name"):
            yield _operation_test(value)


def _service_test(service: str) -> SegmentTest:
    return lambda seg: service in seg.meta["services"]


def _operation_test(name: str) -> SegmentTest:
    return lambda seg: any(op == name for _, op, _ in seg.meta["operations"])


def _bloom_test(key: str, value: str) -> SegmentTest:
    item = string_pair(key, value)

    def test(seg: Segment) -> bool:
        bloom = seg.bloom()
        return bloom is None or bloom.may_contain(item)

    return test
