"""TraceQL text -> the query model (``spanlake.storage.traceql.model``), with lark (LALR).

Errors are ``TraceQLError``: a syntax error says where (line and column, as Tempo does); a query
that parses but uses something spanlake does not support names the construct.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from spanlake.storage.traceql import model as m
from spanlake.storage.traceql.errors import TOO_DEEP, TraceQLError, Unsupported

MAX_QUERY_CHARS = 64 * 1024
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
            "m": 60_000_000_000, "h": 3_600_000_000_000}

# Intrinsics as written -> canonical names; the span: forms are the newer spelling of the same thing.
INTRINSICS = {
    "name": "name", "span:name": "name",
    "status": "status", "span:status": "status",
    "statusMessage": "statusMessage", "span:statusMessage": "statusMessage",
    "kind": "kind", "span:kind": "kind",
    "duration": "duration", "span:duration": "duration",
    "childCount": "childCount", "span:childCount": "childCount",
    "span:id": "span:id", "span:parentID": "span:parentID",
    "traceDuration": "trace:duration", "trace:duration": "trace:duration",
    "rootName": "trace:rootName", "trace:rootName": "trace:rootName",
    "rootServiceName": "trace:rootService", "trace:rootService": "trace:rootService",
    "trace:id": "trace:id",
    "event:name": "event:name", "event:timeSinceStart": "event:timeSinceStart",
    "link:traceID": "link:traceID", "link:spanID": "link:spanID",
    "instrumentation:name": "instrumentation:name", "instrumentation:version": "instrumentation:version",
    "nestedSetLeft": "nestedSetLeft", "nestedSetRight": "nestedSetRight",
    "nestedSetParent": "nestedSetParent",
}


@functools.cache
def _parser() -> Lark:
    grammar = (Path(__file__).parent / "traceql.lark").read_text()
    return Lark(grammar, parser="lalr", propagate_positions=False, maybe_placeholders=False)


def parse(text: str) -> m.Query:
    """Parse a TraceQL query; ``TraceQLError`` says what is wrong and where."""
    if not text.strip():
        raise TraceQLError("empty query: write a spanset filter such as {} or {status = error}")
    if len(text) > MAX_QUERY_CHARS:
        raise TraceQLError(f"query too long: {len(text)} characters, at most {MAX_QUERY_CHARS}")
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as e:
        raise TraceQLError(_syntax_message(e, text)) from None
    try:
        query: m.Query = _ToModel().transform(tree)
    except VisitError as e:
        if isinstance(e.orig_exc, TraceQLError):
            raise e.orig_exc from None
        raise
    except RecursionError:
        raise TraceQLError(TOO_DEEP) from None
    return query


def _syntax_message(e: UnexpectedInput, text: str) -> str:
    where = f"parse error at line {e.line}, col {e.column}"
    if isinstance(e, UnexpectedEOF) or (isinstance(e, UnexpectedToken) and e.token.type == "$END"):
        return f"{where}: unexpected end of query"
    if isinstance(e, UnexpectedToken):
        return f"{where}: syntax error: unexpected {e.token.value!r}"
    if isinstance(e, UnexpectedCharacters):
        return f"{where}: syntax error: unexpected character {text[e.pos_in_stream or 0]!r}"
    return f"{where}: syntax error"


def parse_duration(text: str) -> int:
    """A Go-style duration (``1.5s``, ``200ms``, ``1h30m``) in nanoseconds."""
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise TraceQLError(f"invalid duration {text!r}")
    return round(sum(float(n) * _UNIT_NS[u] for n, u in parts))


def _epoch_ns(value: float) -> int:
    """compare()'s window bounds: unix nanoseconds, or seconds when that small."""
    return int(value) if value > 1e15 else int(value * 1e9)


def _is_metrics(stage: object) -> bool:
    return isinstance(stage, m.MetricsAggregate | m.MetricsCompare)


def _unquote(text: str) -> str:
    out, i = [], 0
    escapes = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            out.append(escapes.get(nxt, "\\" + nxt))  # regex escapes like \d stay as they are
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


@v_args(inline=True)
class _ToModel(Transformer[Token, Any]):
    # --- query shape ----------------------------------------------------------------------------
    def start(self, pipeline: m.Pipeline, hints: dict[str, Any] | None = None) -> m.Query:
        stages: list[Any] = list(pipeline.stages)
        topk = stages.pop() if isinstance(stages[-1], m.TopK) else None
        metrics = stages.pop() if _is_metrics(stages[-1]) else None
        if topk is not None and metrics is None:
            raise TraceQLError(f"{topk.fn}() needs a metrics function before it")
        return m.Query(m.Pipeline(tuple(stages)), metrics, topk, hints or {})

    def pipeline(self, *stages: Any) -> m.Pipeline:
        for n, stage in enumerate(stages):
            last = n == len(stages) - 1
            if isinstance(stage, m.TopK) and not (last and n >= 2 and _is_metrics(stages[n - 1])):
                raise TraceQLError(f"{stage.fn}() must follow a metrics function, at the end of the query")
            if _is_metrics(stage) and not (last or (n == len(stages) - 2 and isinstance(stages[-1], m.TopK))):
                raise TraceQLError("a metrics function must be the last stage of a query")
            if n and isinstance(stage, m.Pipeline) and any(_is_metrics(s) for s in stage.stages):
                raise TraceQLError("a metrics function must be the last stage of a query")
        if _is_metrics(stages[0]) or isinstance(stages[0], m.TopK):
            raise TraceQLError("a query starts with a spanset filter such as {}")
        return m.Pipeline(tuple(stages))

    def group_by(self, exprs: tuple[m.FieldExpr, ...]) -> m.GroupBy:
        return m.GroupBy(exprs)

    def coalesce(self) -> m.Coalesce:
        return m.Coalesce()

    def select(self, exprs: tuple[m.FieldExpr, ...]) -> m.Select:
        return m.Select(exprs)

    def field_list(self, *exprs: m.FieldExpr) -> tuple[m.FieldExpr, ...]:
        return exprs

    def hints(self, *pairs: tuple[str, Any]) -> dict[str, Any]:
        return dict(pairs)

    def hint(self, name: Token, value: Any) -> tuple[str, Any]:
        if isinstance(value, m.Static):
            return str(name), value.value
        return str(name), str(value)

    # --- metrics --------------------------------------------------------------------------------
    def metrics_stage(self, fn: m.MetricsAggregate | m.MetricsCompare,
                      by: tuple[m.FieldExpr, ...] = ()) -> m.MetricsAggregate | m.MetricsCompare:
        if isinstance(fn, m.MetricsCompare):
            if by:
                raise TraceQLError("compare() does not take by()")
            return fn
        return m.MetricsAggregate(fn.fn, fn.expr, fn.quantiles, by)

    def by_clause(self, exprs: tuple[m.FieldExpr, ...]) -> tuple[m.FieldExpr, ...]:
        return exprs

    def metrics_noarg(self, fn: Token) -> m.MetricsAggregate:
        return m.MetricsAggregate(str(fn))

    def metrics_field(self, fn: Token, expr: m.FieldExpr) -> m.MetricsAggregate:
        return m.MetricsAggregate(str(fn), expr)

    def metrics_quantile(self, expr: m.FieldExpr, *qs: float) -> m.MetricsAggregate:
        for q in qs:
            if not 0 <= q <= 1:
                raise TraceQLError(f"quantile_over_time: quantile {q} is not between 0 and 1")
        return m.MetricsAggregate("quantile_over_time", expr, tuple(qs))

    def metrics_histogram(self, expr: m.FieldExpr) -> m.MetricsAggregate:
        return m.MetricsAggregate("histogram_over_time", expr)

    def metrics_compare(self, selection: m.SpansetFilter, *args: float) -> m.MetricsCompare:
        if len(args) > 3:
            raise TraceQLError("compare() takes a spanset filter and at most 3 numbers (topN, start, end)")
        top_n = int(args[0]) if args else 10
        start = _epoch_ns(args[1]) if len(args) > 1 else None
        end = _epoch_ns(args[2]) if len(args) > 2 else None
        return m.MetricsCompare(selection, top_n, start, end)

    def topk_stage(self, fn: Token, n: Token) -> m.TopK:
        return m.TopK("topk" if fn == "topk" else "bottomk", int(n))

    def number(self, *parts: Token) -> float:
        token = parts[-1]
        value = parse_duration(token) / 1e9 if token.type == "DURATION" else float(token)
        return -value if len(parts) == 2 else value

    # --- spansets -------------------------------------------------------------------------------
    def spanset_filter(self, expr: m.FieldExpr | None = None) -> m.SpansetFilter:
        return m.SpansetFilter(expr if expr is not None else m.Static("bool", True))

    def ss_or(self, lhs: m.SpansetExpr, rhs: m.SpansetExpr) -> m.SpansetOp:
        return m.SpansetOp("||", lhs, rhs)

    def ss_and(self, lhs: m.SpansetExpr, rhs: m.SpansetExpr) -> m.SpansetOp:
        return m.SpansetOp("&&", lhs, rhs)

    def ss_struct(self, lhs: m.SpansetExpr, op: Token, rhs: m.SpansetExpr) -> m.SpansetOp:
        return m.SpansetOp(str(op), lhs, rhs)

    # --- scalar filters -------------------------------------------------------------------------
    def scalar_filter(self, lhs: m.ScalarExpr, op: Token, rhs: m.ScalarExpr) -> m.ScalarFilter:
        if str(op) in ("=~", "!~"):
            raise TraceQLError(f"scalar filters compare numbers: {op} is not allowed here")
        return m.ScalarFilter(str(op), lhs, rhs)

    def scalar_op(self, lhs: m.ScalarExpr, op: Token, rhs: m.ScalarExpr) -> m.ScalarOp:
        return m.ScalarOp(str(op), lhs, rhs)

    def count(self) -> m.Aggregate:
        return m.Aggregate("count", None)

    def aggregate(self, fn: Token, expr: m.FieldExpr) -> m.Aggregate:
        return m.Aggregate(str(fn), expr)  # type: ignore[arg-type]

    # --- field expressions ----------------------------------------------------------------------
    def or_op(self, lhs: m.FieldExpr, rhs: m.FieldExpr) -> m.BinaryOp:
        return m.BinaryOp("||", lhs, rhs)

    def and_op(self, lhs: m.FieldExpr, rhs: m.FieldExpr) -> m.BinaryOp:
        return m.BinaryOp("&&", lhs, rhs)

    def compare(self, lhs: m.FieldExpr, op: Token, rhs: m.FieldExpr) -> m.BinaryOp:
        return m.BinaryOp(str(op), lhs, rhs)

    def arith(self, lhs: m.FieldExpr, op: Token, rhs: m.FieldExpr) -> m.BinaryOp:
        return m.BinaryOp(str(op), lhs, rhs)

    def not_op(self, operand: m.FieldExpr) -> m.UnaryOp:
        return m.UnaryOp("!", operand)

    def neg_op(self, operand: m.FieldExpr) -> m.FieldExpr:
        if isinstance(operand, m.Static) and operand.type in ("int", "float", "duration"):
            return m.Static(operand.type, -operand.value)
        return m.UnaryOp("-", operand)

    def attribute(self, token: Token) -> m.Attribute:
        scope, _, name = str(token).partition(".")
        if scope == "parent":
            raise Unsupported("the parent. attribute scope")
        if name.startswith('"'):
            name = _unquote(name[1:-1])
        return m.Attribute(scope, name)

    def intrinsic(self, token: Token) -> m.Intrinsic:
        name = INTRINSICS.get(str(token))
        if name is None:
            raise TraceQLError(f"unknown intrinsic {token!s}")
        return m.Intrinsic(name)

    # --- literals -------------------------------------------------------------------------------
    def string(self, token: Token) -> m.Static:
        return m.Static("string", _unquote(token[1:-1]))

    def raw_string(self, token: Token) -> m.Static:
        return m.Static("string", token[1:-1])

    def int(self, token: Token) -> m.Static:
        return m.Static("int", int(token))

    def float(self, token: Token) -> m.Static:
        return m.Static("float", float(token))

    def duration(self, token: Token) -> m.Static:
        return m.Static("duration", parse_duration(str(token)))

    def true(self) -> m.Static:
        return m.Static("bool", True)

    def false(self) -> m.Static:
        return m.Static("bool", False)

    def nil(self) -> m.Static:
        return m.Static("nil", None)

    def status(self, token: Token) -> m.Static:
        return m.Static("status", str(token))

    def kind(self, token: Token) -> m.Static:
        return m.Static("kind", str(token))
