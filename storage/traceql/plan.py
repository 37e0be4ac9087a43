"""A TraceQL query's plan: its spanset filters and the values it reads, each one SQL column.

The plan also decides how much SQL alone can answer: a trace-level prefilter (``HAVING``) that every
result must pass, whether it is exact (then SQL applies ``limit`` itself) and whether whole traces
(every span, for the tree) or only matching spans need to leave DuckDB.
"""

from __future__ import annotations

from collections.abc import Iterator

from spanlake.storage.traceql import model as m
from spanlake.storage.traceql.compile import Compiler
from spanlake.storage.traceql.values import ValueSpec, value_spec, value_sql

_NON_REJECTING = (m.Select, m.Coalesce, m.GroupBy)


class Plan:
    def __init__(self, pipeline: m.Pipeline, extra_values: tuple[m.FieldExpr, ...] = ()) -> None:
        self.pipeline = pipeline
        self.filters: list[m.SpansetFilter] = []
        self.values: list[ValueSpec] = []
        self._filter_pos: dict[m.SpansetFilter, int] = {}
        self._value_pos: dict[m.FieldExpr, int] = {}
        self.structural = False
        self._walk(pipeline)
        for expr in extra_values:
            self.value_index(expr)
        self.compiler = Compiler()
        self.filter_sql = [self.compiler.condition(f.expr) for f in self.filters]
        self.value_sql = [value_sql(v, self.compiler) for v in self.values]

    # --- indices ------------------------------------------------------------------------------
    def filter_index(self, f: m.SpansetFilter) -> int:
        if f not in self._filter_pos:
            self._filter_pos[f] = len(self.filters)
            self.filters.append(f)
        return self._filter_pos[f]

    def value_index(self, expr: m.FieldExpr) -> int:
        if expr not in self._value_pos:
            self._value_pos[expr] = len(self.values)
            self.values.append(value_spec(expr))
        return self._value_pos[expr]

    @property
    def needs_tree(self) -> bool:
        return self.structural or any(v.kind == "tree" for v in self.values)

    @property
    def exact(self) -> bool:
        """Whether the prefilter alone decides which traces match (so SQL may apply the limit)."""
        first, rest = self.pipeline.stages[0], self.pipeline.stages[1:]
        return _boolean_only(first) and all(isinstance(s, _NON_REJECTING) for s in rest)

    def prefilter(self) -> str:
        """A trace-level SQL condition over ``bool_or`` of the filters that every match passes."""
        return _need(self.pipeline.stages[0], self)

    def row_filter(self) -> str:
        if self.needs_tree or not self.filter_sql:
            return "TRUE"
        return " OR ".join(f"({c})" for c in self.filter_sql)

    # --- walking the query --------------------------------------------------------------------
    def _walk(self, node: m.Stage) -> None:
        if isinstance(node, m.Pipeline):
            for stage in node.stages:
                self._walk(stage)
        elif isinstance(node, m.SpansetFilter):
            self.filter_index(node)
            for expr in matched_values(node.expr):
                self.value_index(expr)
        elif isinstance(node, m.SpansetOp):
            self.structural |= node.op not in ("&&", "||")
            self._walk(node.lhs)
            self._walk(node.rhs)
        elif isinstance(node, m.ScalarFilter):
            for agg in _aggregates(node.lhs, node.rhs):
                if agg.expr is not None:
                    self.value_index(agg.expr)
        elif isinstance(node, m.GroupBy | m.Select):
            for expr in node.exprs:
                self.value_index(expr)


def matched_values(expr: m.FieldExpr) -> Iterator[m.FieldExpr]:
    """The attributes and intrinsics a filter reads: search results show them on matched spans."""
    if isinstance(expr, m.Attribute):
        yield expr
    elif isinstance(expr, m.Intrinsic):
        if expr.name not in ("name", "duration", "trace:id", "span:id"):  # already in every span
            yield expr
    elif isinstance(expr, m.BinaryOp):
        yield from matched_values(expr.lhs)
        yield from matched_values(expr.rhs)
    elif isinstance(expr, m.UnaryOp):
        yield from matched_values(expr.operand)


def _aggregates(*exprs: m.ScalarExpr) -> Iterator[m.Aggregate]:
    for expr in exprs:
        if isinstance(expr, m.Aggregate):
            yield expr
        elif isinstance(expr, m.ScalarOp):
            yield from _aggregates(expr.lhs, expr.rhs)


def _boolean_only(node: m.Stage) -> bool:
    if isinstance(node, m.SpansetFilter):
        return True
    if isinstance(node, m.SpansetOp) and node.op in ("&&", "||"):
        return _boolean_only(node.lhs) and _boolean_only(node.rhs)
    return False


def _need(node: m.Stage, plan: Plan) -> str:
    if isinstance(node, m.SpansetFilter):
        return f"bool_or({plan.filter_sql[plan.filter_index(node)]})"
    if isinstance(node, m.Pipeline):
        return _need(node.stages[0], plan)
    if isinstance(node, m.SpansetOp):
        if node.op == "||":
            return f"({_need(node.lhs, plan)} OR {_need(node.rhs, plan)})"
        if node.op.startswith("!"):
            return _need(node.rhs, plan)
        return f"({_need(node.lhs, plan)} AND {_need(node.rhs, plan)})"
    return "TRUE"
