"""The query model that TraceQL compiles to: plain frozen dataclasses, no behaviour.

A query is a ``Pipeline``: its first stage is a spanset expression (filters ``{...}`` combined with
``&&``, ``||`` and the structural operators), later stages filter, group or reshape the spansets, and
an optional last metrics stage turns matched spans into time series. The parser
(``spanlake.query.traceql.parser``) builds these; ``spanlake.storage.traceql`` executes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

# The value types TraceQL knows. ``status`` and ``kind`` are enums (``ok``, ``server``...).
StaticType = Literal["string", "int", "float", "bool", "nil", "duration", "status", "kind"]

SCOPES = ("span", "resource", "event", "link", "instrumentation", "")  # "" is unscoped ``.x``


@dataclass(frozen=True)
class Static:
    type: StaticType
    value: Any  # str, int, float, bool, None; durations in integer nanoseconds; enums by name


@dataclass(frozen=True)
class Attribute:
    scope: str  # one of SCOPES
    name: str

    def label(self) -> str:
        return f"{self.scope}.{self.name}" if self.scope else f".{self.name}"


@dataclass(frozen=True)
class Intrinsic:
    name: str  # canonical name, e.g. "duration", "trace:rootService", "event:name"

    def label(self) -> str:
        return self.name


@dataclass(frozen=True)
class BinaryOp:
    op: str  # && || = != < <= > >= =~ !~ + - * / % ^
    lhs: FieldExpr
    rhs: FieldExpr


@dataclass(frozen=True)
class UnaryOp:
    op: Literal["!", "-"]
    operand: FieldExpr


@dataclass(frozen=True)
class TagText:
    """Jaeger's tag match, not TraceQL syntax: an attribute ``key`` whose value reads as ``value``
    (pdata ``AsString``; numbers also compare as numbers) at any level of the span (span, resource,
    scope, event, link), or only among resource attributes."""

    key: str
    value: str
    resource_only: bool = False


FieldExpr = Static | Attribute | Intrinsic | BinaryOp | UnaryOp | TagText


@dataclass(frozen=True)
class SpansetFilter:
    expr: FieldExpr  # ``{}`` is ``Static("bool", True)``


@dataclass(frozen=True)
class SpansetOp:
    op: str  # && || > >> < << ~ !> !>> !< !<< !~ &> &>> &< &<< &~
    lhs: SpansetExpr
    rhs: SpansetExpr


@dataclass(frozen=True)
class Aggregate:
    fn: Literal["count", "avg", "min", "max", "sum"]
    expr: FieldExpr | None  # None for count()


@dataclass(frozen=True)
class ScalarOp:
    op: str  # + - * / % ^
    lhs: ScalarExpr
    rhs: ScalarExpr


ScalarExpr = Aggregate | Static | ScalarOp


@dataclass(frozen=True)
class ScalarFilter:
    op: str  # = != < <= > >=
    lhs: ScalarExpr
    rhs: ScalarExpr


@dataclass(frozen=True)
class GroupBy:
    exprs: tuple[FieldExpr, ...]


@dataclass(frozen=True)
class Coalesce:
    pass


@dataclass(frozen=True)
class Select:
    exprs: tuple[FieldExpr, ...]


@dataclass(frozen=True)
class MetricsAggregate:
    """``rate()``, ``count_over_time()``, ``<fn>_over_time(x)``, ``quantile_over_time(x, q...)``,
    ``histogram_over_time(x)``, each with ``by(...)``."""

    fn: str
    expr: FieldExpr | None = None
    quantiles: tuple[float, ...] = ()
    by: tuple[FieldExpr, ...] = ()


@dataclass(frozen=True)
class MetricsCompare:
    """``compare({selection}, topN, start, end)``: attribute values of the selection vs the rest."""

    selection: SpansetFilter
    top_n: int = 10
    start_ns: int | None = None
    end_ns: int | None = None


@dataclass(frozen=True)
class TopK:
    fn: Literal["topk", "bottomk"]
    n: int


@dataclass(frozen=True)
class Pipeline:
    stages: tuple[Stage, ...]  # stages[0] is a spanset expression


SpansetExpr = SpansetFilter | SpansetOp | Pipeline
Stage = SpansetExpr | ScalarFilter | GroupBy | Coalesce | Select


@dataclass(frozen=True)
class Query:
    pipeline: Pipeline
    metrics: MetricsAggregate | MetricsCompare | None = None
    second_stage: TopK | None = None
    hints: dict[str, Any] = field(default_factory=dict)  # ``with(...)``: accepted, mostly advisory


def all_of(conds: list[FieldExpr]) -> FieldExpr:
    """``a && b && ...`` as a balanced tree (depth log n: compiling it never recurses deeply);
    ``true`` when there are none."""
    if not conds:
        return Static("bool", True)
    if len(conds) == 1:
        return conds[0]
    mid = len(conds) // 2
    return BinaryOp("&&", all_of(conds[:mid]), all_of(conds[mid:]))
