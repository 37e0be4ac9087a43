"""Per-trace evaluation of spanset operators and pipeline stages, over rows that SQL prepared.

SQL has already decided every spanset filter on every span (columns ``f0``, ``f1``...) and read
every value the pipeline needs (``v0``, ``v1``...). What is left is per trace and small: combining
spansets (``&&``, ``||``), walking the span tree for the structural operators, and the pipeline
(aggregates, ``by``, ``coalesce``, ``select``).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from spanlake.storage.traceql import model as m
from spanlake.storage.traceql.values import as_number

_CMP: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
    ">": operator.gt, ">=": operator.ge,
}


@dataclass
class Spanset:
    spans: frozenset[int]  # row indices within the trace
    labels: tuple[tuple[str, Any], ...] = ()  # by() groups: (label, value)
    scalars: tuple[tuple[str, float], ...] = ()  # aggregate values that filtered it


@dataclass
class Trace:
    """The rows of one trace: ``flags[i][r]`` filter i on row r, ``values[j][r]`` value j of row r."""

    span_ids: list[bytes]
    parent_ids: list[bytes | None]
    flags: list[list[bool]]
    values: list[list[Any]]
    tree: Tree = field(init=False)

    def __post_init__(self) -> None:
        self.tree = Tree(self.span_ids, self.parent_ids)


class Tree:
    """Parent/child relations between the rows of one trace (by span ID)."""

    def __init__(self, span_ids: Sequence[bytes], parent_ids: Sequence[bytes | None]) -> None:
        index = {sid: n for n, sid in enumerate(span_ids)}
        self.parent = [index.get(p, -1) if p is not None else -1 for p in parent_ids]
        self.children: list[list[int]] = [[] for _ in span_ids]
        for n, p in enumerate(self.parent):
            if p >= 0 and p != n:
                self.children[p].append(n)

    def ancestors(self, n: int) -> list[int]:
        out, seen = [], {n}
        p = self.parent[n]
        while p >= 0 and p not in seen:
            out.append(p)
            seen.add(p)
            p = self.parent[p]
        return out

    def nested_set(self) -> tuple[list[int], list[int]]:
        """Tempo's nested-set numbers: depth first from each root, left on entry, right on exit."""
        n = len(self.parent)
        left, right = [0] * n, [0] * n
        counter = 0
        for root in (i for i in range(n) if self.parent[i] < 0):
            stack: list[tuple[int, bool]] = [(root, False)]
            while stack:
                node, done = stack.pop()
                counter += 1
                if done:
                    right[node] = counter
                    continue
                left[node] = counter
                stack.append((node, True))
                stack.extend((c, False) for c in reversed(self.children[node]))
        return left, right

    def descendants(self, n: int) -> set[int]:
        out: set[int] = set()
        stack = list(self.children[n])
        while stack:
            c = stack.pop()
            if c not in out and c != n:
                out.add(c)
                stack.extend(self.children[c])
        return out


class Evaluator:
    """Evaluates one query's spanset part on traces; filter and value indices come from the plan."""

    def __init__(self, filter_index: Callable[[m.SpansetFilter], int],
                 value_index: Callable[[m.FieldExpr], int]) -> None:
        self.filter_index = filter_index
        self.value_index = value_index

    def run(self, pipeline: m.Pipeline, trace: Trace) -> list[Spanset]:
        universe = frozenset(range(len(trace.span_ids)))
        return self._pipeline(pipeline, trace, universe)

    def _pipeline(self, pipeline: m.Pipeline, trace: Trace, universe: frozenset[int]) -> list[Spanset]:
        sets = self._expr(pipeline.stages[0], trace, universe)
        for stage in pipeline.stages[1:]:
            if not sets:
                break
            sets = self._stage(stage, trace, sets)
        return sets

    def _stage(self, stage: m.Stage, trace: Trace, sets: list[Spanset]) -> list[Spanset]:
        if isinstance(stage, m.ScalarFilter):
            return [s for s in (self._scalar_filter(stage, trace, s) for s in sets) if s is not None]
        if isinstance(stage, m.GroupBy):
            return [g for s in sets for g in self._group(stage, trace, s)]
        if isinstance(stage, m.Coalesce):
            return [Spanset(frozenset().union(*(s.spans for s in sets)))]
        if isinstance(stage, m.Select):
            return sets  # the selected values are read for every output span anyway
        out = []
        for s in sets:  # a spanset expression as a stage filters each spanset's own spans
            for r in self._expr(stage, trace, s.spans):
                out.append(Spanset(r.spans, s.labels + r.labels, s.scalars))
        return out

    # --- spanset expressions ------------------------------------------------------------------
    def _expr(self, expr: m.Stage, trace: Trace, universe: frozenset[int]) -> list[Spanset]:
        if isinstance(expr, m.SpansetFilter):
            flags = trace.flags[self.filter_index(expr)]
            hit = frozenset(n for n in universe if flags[n])
            return [Spanset(hit)] if hit else []
        if isinstance(expr, m.Pipeline):
            return self._pipeline(expr, trace, universe)
        if isinstance(expr, m.SpansetOp):
            lhs = self._expr(expr.lhs, trace, universe)
            rhs = self._expr(expr.rhs, trace, universe)
            return self._combine(expr.op, lhs, rhs, trace.tree)
        raise AssertionError(f"not a spanset expression: {expr!r}")

    def _combine(self, op: str, lhs: list[Spanset], rhs: list[Spanset], tree: Tree) -> list[Spanset]:
        if op == "||":
            if not lhs or not rhs:
                return lhs or rhs
        elif op == "&&" or not op.startswith("!"):
            if not lhs or not rhs:
                return []
        elif not rhs:  # a negated structural operator keeps right-hand spans without the relation
            return []
        out = []
        for r in rhs:
            for left in lhs or [Spanset(frozenset())]:
                if op in ("&&", "||"):
                    spans = left.spans | r.spans
                else:
                    spans = structural(op, left.spans, r.spans, tree)
                if spans:
                    out.append(Spanset(spans, left.labels + r.labels, left.scalars + r.scalars))
        return out

    # --- pipeline stages ----------------------------------------------------------------------
    def _scalar_filter(self, stage: m.ScalarFilter, trace: Trace, s: Spanset) -> Spanset | None:
        lhs = self._scalar(stage.lhs, trace, s)
        rhs = self._scalar(stage.rhs, trace, s)
        if lhs is None or rhs is None or not _CMP[stage.op](lhs, rhs):
            return None
        found = [(_scalar_label(x), v) for x, v in ((stage.lhs, lhs), (stage.rhs, rhs))
                 if isinstance(x, m.Aggregate)]
        return Spanset(s.spans, s.labels, s.scalars + tuple(found))

    def _scalar(self, expr: m.ScalarExpr, trace: Trace, s: Spanset) -> float | None:
        if isinstance(expr, m.Static):
            return float(expr.value) if expr.type in ("int", "float", "duration") else None
        if isinstance(expr, m.ScalarOp):
            a, b = self._scalar(expr.lhs, trace, s), self._scalar(expr.rhs, trace, s)
            return None if a is None or b is None else arithmetic(expr.op, a, b)
        if expr.fn == "count":
            return float(len(s.spans))
        assert expr.expr is not None
        column = trace.values[self.value_index(expr.expr)]
        numbers = [x for x in (as_number(column[n]) for n in s.spans) if x is not None]
        if not numbers:
            return None
        if expr.fn == "sum":
            return math.fsum(numbers)
        if expr.fn == "avg":
            return math.fsum(numbers) / len(numbers)
        return min(numbers) if expr.fn == "min" else max(numbers)

    def _group(self, stage: m.GroupBy, trace: Trace, s: Spanset) -> list[Spanset]:
        columns = [(expr, trace.values[self.value_index(expr)]) for expr in stage.exprs]
        groups: dict[tuple[Any, ...], tuple[tuple[Any, ...], set[int]]] = {}
        for n in sorted(s.spans):
            values = tuple(col[n] for _, col in columns)
            key = tuple(_hashable(v) for v in values)
            groups.setdefault(key, (values, set()))[1].add(n)
        out = []
        for values, spans in groups.values():
            labels = tuple((_label(expr), value) for (expr, _), value in zip(columns, values, strict=True))
            out.append(Spanset(frozenset(spans), s.labels + labels, s.scalars))
        return out


def structural(op: str, lhs: frozenset[int], rhs: frozenset[int], tree: Tree) -> frozenset[int]:
    """The spans a structural operator keeps (Tempo's docs: the right-hand side's, or both for &)."""
    base = op.lstrip("!&")
    keep = set()
    for b in rhs:
        related = _related(base, b, lhs, tree)
        if op.startswith("!"):
            if not related:
                keep.add(b)
        elif related:
            keep.add(b)
            if op.startswith("&"):
                keep.update(related)
    return frozenset(keep)


def _related(base: str, b: int, lhs: frozenset[int], tree: Tree) -> set[int]:
    """Left-hand spans in the relation with right-hand span ``b``."""
    if base == ">":  # b is a child of a
        p = tree.parent[b]
        return {p} if p in lhs else set()
    if base == ">>":  # b is a descendant of a
        return {a for a in tree.ancestors(b) if a in lhs}
    if base == "<":  # b is the parent of a
        return {a for a in tree.children[b] if a in lhs}
    if base == "<<":  # b is an ancestor of a
        return {a for a in tree.descendants(b) if a in lhs}
    if base == "~":  # b and a share a parent
        p = tree.parent[b]
        return {a for a in tree.children[p] if a in lhs and a != b} if p >= 0 else set()
    raise AssertionError(f"unknown structural operator {base}")


def arithmetic(op: str, a: float, b: float) -> float | None:
    try:
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if op == "/":
            return a / b
        if op == "%":
            return math.fmod(a, b)
        return float(a**b)
    except (ZeroDivisionError, OverflowError, ValueError):
        return None


def _hashable(value: Any) -> Any:
    """A group key that keeps types apart: int 1, double 1.0 and true are different values."""
    if isinstance(value, list):
        return ("list", tuple(_hashable(v) for v in value))
    if isinstance(value, dict):
        return ("map", tuple(sorted((k, _hashable(v)) for k, v in value.items())))
    return (type(value).__name__, value)


def _label(expr: m.FieldExpr) -> str:
    return expr.label() if isinstance(expr, m.Attribute | m.Intrinsic) else str(expr)


def _scalar_label(expr: m.ScalarExpr) -> str:
    if isinstance(expr, m.Aggregate):
        inner = "" if expr.expr is None else _label(expr.expr)
        return f"{expr.fn}({inner})"
    return str(expr)

