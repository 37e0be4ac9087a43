"""TraceQL field expressions -> parameterised DuckDB SQL over one span row of the span schema.

Semantics (shared with the span-by-span oracle in ``tests/storage/traceql/oracle.py``):

- An attribute reference is the list of that span's attributes with the key, at its scope
  (``span.``, ``resource.``, ``instrumentation.`` = scope attributes, ``event.`` = any event's,
  ``link.`` = any link's, unscoped ``.x`` = span or resource). A comparison with it holds when
  one of them has a value of the literal's type that compares true: ``span.code = 500`` matches int
  500 and double 500.0, never the string "500"; ``= nil`` holds when there is none.
- Conditions on ``event.``/``event:`` fields hold when one event satisfies that comparison (each
  comparison on its own); likewise ``link.``/``link:``.
- A comparison whose operand is missing (a root's ``span:parentID``, a missing attribute in
  arithmetic) is false, and ``!`` of it is true.

User values are always query parameters; only our own column names are written into the SQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from spanlake.storage.schema import SPAN_KIND_BY_NAME, ValueType
from spanlake.storage.traceql import model as m
from spanlake.storage.traceql.errors import TraceQLError, Unsupported
from spanlake.storage.traceql.text_match import text_match_sql

STATUS_CODES = {"unset": 0, "ok": 1, "error": 2}
KIND_CODES = {**{k: v for k, v in SPAN_KIND_BY_NAME.items() if k}, "unspecified": 0}
TREE_INTRINSICS = frozenset({"nestedSetLeft", "nestedSetRight", "nestedSetParent", "childCount"})
TRACE_INTRINSICS = frozenset({"trace:duration", "trace:rootName", "trace:rootService"})
_ATTR_COLUMNS = {"span": "span_attributes", "resource": "resource_attributes",
                 "instrumentation": "scope_attributes"}
_CMP = {"=": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_ARITH = {"+": "+", "-": "-", "*": "*", "/": "/", "%": "%", "^": "**"}
_NUMERIC = ValueType.INT, ValueType.DOUBLE


@dataclass
class Typed:
    sql: str
    type: str  # str num bool status kind nil attrs
    enum_name: str = ""  # a status or kind literal's name, for comparing with a text attribute
    nullable: bool = True  # False for literals and NOT NULL columns: no coalesce, so DuckDB can push
    #                        the comparison down into the Parquet scan (row-group pruning)


@dataclass
class Compiler:
    """Compiles expressions, collecting their parameters; one per SQL statement."""

    params: dict[str, Any] = field(default_factory=dict)
    uses_trace_stats: bool = False

    def param(self, value: Any) -> str:
        name = f"q{len(self.params)}"
        self.params[name] = value
        return f"${name}"

    # --- conditions ---------------------------------------------------------------------------
    def condition(self, expr: m.FieldExpr) -> str:
        """A SQL boolean (never NULL) that holds on the spans ``{expr}`` matches."""
        typed = self._bool(expr, "")
        return typed

    def _bool(self, expr: m.FieldExpr, ctx: str) -> str:
        group = group_level(expr) if not ctx else ""
        if group:  # conditions on event (link) fields joined by && / ||: all on one event (link)
            var, column = ("e", "events") if group == "event" else ("l", "links")
            return f"(len(list_filter({column}, lambda {var}: {self._bool(expr, var)})) > 0)"
        if isinstance(expr, m.BinaryOp) and expr.op in ("&&", "||"):
            joiner = " AND " if expr.op == "&&" else " OR "
            return f"({self._bool(expr.lhs, ctx)}{joiner}{self._bool(expr.rhs, ctx)})"
        if isinstance(expr, m.UnaryOp) and expr.op == "!":
            return f"(NOT {self._bool(expr.operand, ctx)})"
        if isinstance(expr, m.BinaryOp) and (expr.op in _CMP or expr.op in ("=~", "!~")):
            return self._comparison(expr, ctx)
        if isinstance(expr, m.Static):
            if expr.type != "bool":
                raise TraceQLError(f"a spanset filter needs a condition, not the {expr.type} {expr.value!r}")
            return "TRUE" if expr.value else "FALSE"
        if isinstance(expr, m.TagText):
            return text_match_sql(expr.key, expr.value, expr.resource_only, self.param)
        if isinstance(expr, m.Attribute):  # a bare attribute: a boolean attribute that is true
            return self._comparison(m.BinaryOp("=", expr, m.Static("bool", True)), ctx)
        raise TraceQLError(f"a spanset filter needs a condition, not {_describe(expr)}")

    def _comparison(self, expr: m.BinaryOp, ctx: str) -> str:
        root_test = _root_test(expr)
        if root_test is not None:
            return root_test
        level = _level(expr)
        if level and not ctx:
            var = "e" if level == "event" else "l"
            column = "events" if level == "event" else "links"
            inner = self._comparison(expr, var)
            return f"(len(list_filter({column}, lambda {var}: {inner})) > 0)"
        service = _service_equality(expr)
        if service is not None and not ctx:
            return f"(service_name = {self.param(service)})"
        lhs, rhs = self._typed(expr.lhs, ctx), self._typed(expr.rhs, ctx)
        if lhs.type == "attrs" and rhs.type == "attrs":
            raise Unsupported("comparing two attributes with each other")
        if rhs.type == "attrs":
            lhs, rhs = rhs, lhs
            op = _mirror(expr.op)
        else:
            op = expr.op
        if lhs.type == "attrs":
            return self._attrs_test(lhs.sql, op, rhs)
        test = self._scalar_test(lhs, op, rhs)
        return f"coalesce({test}, FALSE)" if lhs.nullable or rhs.nullable else test

    def _attrs_test(self, attrs: str, op: str, other: Typed) -> str:
        if other.type == "nil":
            if op not in ("=", "!="):
                raise TraceQLError(f"nil can only be compared with = or !=, not {op}")
            return f"(len({attrs}) {'=' if op == '=' else '>'} 0)"
        test = self._member_test(op, other)
        return f"(len(list_filter({attrs}, lambda a: {test})) > 0)"

    def _member_test(self, op: str, other: Typed) -> str:
        """A test of one attribute struct ``a`` against a typed operand."""
        if op in ("=~", "!~"):
            if other.type != "str":
                raise TraceQLError(f"{op} needs a string (a regular expression) on its right")
            match = f"regexp_full_match(a.str, {other.sql})"
            return f"(a.type = {ValueType.STRING} AND {'NOT ' if op == '!~' else ''}{match})"
        sql_op = _CMP[op]
        if other.type == "str":
            return f"(a.type = {ValueType.STRING} AND a.str {sql_op} {other.sql})"
        if other.type in ("status", "kind"):  # an attribute holding the enum's name as text
            if not other.enum_name:
                raise TraceQLError(f"cannot compare an attribute with the intrinsic {other.type}")
            return f"(a.type = {ValueType.STRING} AND a.str {sql_op} {self.param(other.enum_name)})"
        if other.type == "num":
            return (f"((a.type = {ValueType.INT} AND a.int {sql_op} {other.sql}) OR "
                    f"(a.type = {ValueType.DOUBLE} AND a.double {sql_op} {other.sql}))")
        if other.type == "bool":
            if op not in ("=", "!="):
                raise TraceQLError(f"booleans can only be compared with = or !=, not {op}")
            return f"(a.type = {ValueType.BOOL} AND a.bool {sql_op} {other.sql})"
        raise TraceQLError(f"cannot compare an attribute with {other.type}")

    def _scalar_test(self, lhs: Typed, op: str, rhs: Typed) -> str:
        if lhs.type == "nil" or rhs.type == "nil":
            value = rhs if lhs.type == "nil" else lhs
            if op not in ("=", "!="):
                raise TraceQLError(f"nil can only be compared with = or !=, not {op}")
            return f"({value.sql} IS {'' if op == '=' else 'NOT '}NULL)"
        if op in ("=~", "!~"):
            if lhs.type != "str" or rhs.type != "str":
                raise TraceQLError(f"{op} compares strings with a regular expression")
            return f"({'NOT ' if op == '!~' else ''}regexp_full_match({lhs.sql}, {rhs.sql}))"
        if lhs.type != rhs.type:
            raise TraceQLError(f"cannot compare {lhs.type} with {rhs.type}")
        if lhs.type in ("status", "kind", "bool") and op not in ("=", "!="):
            raise TraceQLError(f"{lhs.type} values can only be compared with = or !=, not {op}")
        return f"({lhs.sql} {_CMP[op]} {rhs.sql})"

    # --- typed operands -----------------------------------------------------------------------
    def _typed(self, expr: m.FieldExpr, ctx: str) -> Typed:
        if isinstance(expr, m.Static):
            return self._static(expr)
        if isinstance(expr, m.Attribute):
            return Typed(self.attribute_list(expr, ctx), "attrs")
        if isinstance(expr, m.Intrinsic):
            return self._intrinsic(expr.name, ctx)
        if isinstance(expr, m.UnaryOp) and expr.op == "-":
            return Typed(f"(-{self._numeric(expr.operand, ctx)})", "num")
        if isinstance(expr, m.BinaryOp) and expr.op in _ARITH:  # nullable: / by 0, missing attributes
            return Typed(f"({self._numeric(expr.lhs, ctx)} {_ARITH[expr.op]} "
                         f"{self._numeric(expr.rhs, ctx)})", "num")
        if isinstance(expr, m.BinaryOp | m.UnaryOp):  # a nested condition used as a value
            return Typed(self._bool(expr, ctx), "bool")
        raise TraceQLError(f"unexpected {_describe(expr)}")

    def _numeric(self, expr: m.FieldExpr, ctx: str) -> str:
        typed = self._typed(expr, ctx)
        if typed.type == "attrs":
            return self.attr_number(typed.sql)
        if typed.type != "num":
            raise TraceQLError(f"arithmetic needs numbers, not {typed.type}")
        return typed.sql

    @staticmethod
    def attr_number(attrs: str) -> str:
        numbers = f"list_filter({attrs}, lambda a: a.type IN ({ValueType.INT}, {ValueType.DOUBLE}))"
        return f"(list_transform({numbers}, lambda a: coalesce(a.int::DOUBLE, a.double)))[1]"

    def _static(self, expr: m.Static) -> Typed:
        if expr.type == "nil":
            return Typed("NULL", "nil")
        if expr.type == "string":
            return Typed(self.param(expr.value), "str", nullable=False)
        if expr.type in ("int", "duration"):
            return Typed(self.param(int(expr.value)), "num", nullable=False)
        if expr.type == "float":
            return Typed(self.param(float(expr.value)), "num", nullable=False)
        if expr.type == "bool":
            return Typed(self.param(bool(expr.value)), "bool", nullable=False)
        if expr.type == "status":
            return Typed(self.param(STATUS_CODES[expr.value]), "status", expr.value, nullable=False)
        return Typed(self.param(KIND_CODES[expr.value]), "kind", expr.value, nullable=False)

    def attribute_list(self, attr: m.Attribute, ctx: str) -> str:
        """SQL for the list of attribute structs ``attr`` names on the current span (or event/link)."""
        key = self.param(attr.name)
        if attr.scope in ("event", "link"):
            var = "e" if attr.scope == "event" else "l"
            if ctx != var:
                raise AssertionError("event/link attributes are compiled inside their lambda")
            return f"list_filter({var}.attributes, lambda a: a.key = {key})"
        if attr.scope:
            return f"list_filter({_ATTR_COLUMNS[attr.scope]}, lambda a: a.key = {key})"
        return (f"list_concat(list_filter(span_attributes, lambda a: a.key = {key}), "
                f"list_filter(resource_attributes, lambda a: a.key = {key}))")

    def _intrinsic(self, name: str, ctx: str) -> Typed:
        if name in TREE_INTRINSICS:
            raise Unsupported(f"the intrinsic {name} in a filter (it is available in select())")
        if name in TRACE_INTRINSICS:
            self.uses_trace_stats = True
        if (name.startswith("event:") and ctx != "e") or (name.startswith("link:") and ctx != "l"):
            raise AssertionError("event/link intrinsics are compiled inside their lambda")
        sql, kind = INTRINSIC_SQL[name]
        return Typed(sql, kind, nullable=name not in NOT_NULL_INTRINSICS)


# name -> (SQL over a span row, or an event ``e`` / link ``l`` inside a lambda; type)
INTRINSIC_SQL: dict[str, tuple[str, str]] = {
    "name": ("name", "str"),
    "status": ("status_code", "status"),
    "statusMessage": ("status_message", "str"),
    "kind": ("kind", "kind"),
    "duration": ("duration_nano", "num"),
    "span:id": ("lower(hex(span_id))", "str"),
    "span:parentID": ("lower(hex(parent_span_id))", "str"),
    "trace:id": ("lower(hex(trace_id))", "str"),
    "trace:duration": ("_trace_duration", "num"),
    "trace:rootName": ("_root_name", "str"),
    "trace:rootService": ("_root_service", "str"),
    "instrumentation:name": ("scope_name", "str"),
    "instrumentation:version": ("scope_version", "str"),
    "event:name": ("e.name", "str"),
    "event:timeSinceStart": ("(e.time_unix_nano - start_time_unix_nano)", "num"),
    "link:traceID": ("lower(hex(l.trace_id))", "str"),
    "link:spanID": ("lower(hex(l.span_id))", "str"),
}

# Intrinsics read from NOT NULL columns of the span schema.
NOT_NULL_INTRINSICS = frozenset({"name", "status", "statusMessage", "kind", "duration", "span:id",
                                 "trace:id", "instrumentation:name", "instrumentation:version"})

# The SQL that adds the trace-level columns that ``trace:`` intrinsics read, over a relation of spans.
TRACE_STATS_SQL = (
    "max(end_time_unix_nano) OVER t - min(start_time_unix_nano) OVER t AS _trace_duration, "
    "arg_min(name, start_time_unix_nano) FILTER (WHERE parent_span_id IS NULL) OVER t AS _root_name, "
    "arg_min(service_name, start_time_unix_nano) FILTER (WHERE parent_span_id IS NULL) OVER t "
    "AS _root_service"
)
TRACE_WINDOW = "WINDOW t AS (PARTITION BY trace_id)"


def _service_equality(expr: m.BinaryOp) -> str | None:
    """The value of ``resource.service.name = "v"`` (v not empty), which reads the ``service_name``
    column: it holds the resource's string ``service.name`` ("" without one), and OTLP attribute
    keys are unique, so the column decides the comparison exactly, with no list to scan."""
    service = m.Attribute("resource", "service.name")
    for a, b in ((expr.lhs, expr.rhs), (expr.rhs, expr.lhs)):
        if expr.op == "=" and a == service and isinstance(b, m.Static) and b.type == "string" and b.value:
            return str(b.value)
    return None


def _root_test(expr: m.BinaryOp) -> str | None:
    """``nestedSetParent`` compared with -1 or 0 (Traces Drilldown's "root spans" filter).

    Tempo numbers spans depth first at write time; a root's nestedSetParent is -1 and every other
    span's is positive, so a comparison with -1 or 0 only asks "is it a root?". Other comparisons
    need the numbering, which spanlake computes after SQL (for ``select()``), so they are refused.
    """
    lhs, rhs, op = expr.lhs, expr.rhs, expr.op
    if isinstance(rhs, m.Intrinsic) and rhs.name == "nestedSetParent":
        lhs, rhs, op = rhs, lhs, _mirror(op)
    if not (isinstance(lhs, m.Intrinsic) and lhs.name == "nestedSetParent"):
        return None
    if not (isinstance(rhs, m.Static) and rhs.type == "int" and rhs.value in (-1, 0)) or op not in _CMP:
        raise Unsupported("nestedSetParent in a filter other than a comparison with -1 or 0")
    sign = -1 if rhs.value == -1 else 0
    # root: -1; others: >= 1. Evaluate "value op sign" for both cases.
    root = _CMP_PY[op](-1, sign)
    child = _CMP_PY[op](1, sign)
    if root and child:
        return "TRUE"
    if root:
        return "(parent_span_id IS NULL)"
    return "(parent_span_id IS NOT NULL)" if child else "FALSE"


_CMP_PY = {"=": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
           "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}


def group_level(expr: m.FieldExpr) -> str:
    """"event" ("link") when ``expr`` joins, with && and ||, only comparisons of event (link) fields:
    such a group holds when one event (link) satisfies all of it, as in Tempo."""
    if not (isinstance(expr, m.BinaryOp) and expr.op in ("&&", "||")):
        return ""
    levels = set()
    for side in (expr.lhs, expr.rhs):
        if isinstance(side, m.BinaryOp) and side.op in ("&&", "||"):
            levels.add(group_level(side))
        elif isinstance(side, m.BinaryOp) and (side.op in _CMP or side.op in ("=~", "!~")):
            levels.add(_level(side))
        else:
            return ""
    return levels.pop() if len(levels) == 1 and "" not in levels else ""


def _level(expr: m.FieldExpr) -> str:
    """"event" or "link" when the comparison reads event or link fields, else ""."""
    levels = {lvl for lvl in _levels(expr) if lvl}
    if len(levels) > 1:
        raise Unsupported("one comparison over both event and link fields")
    return levels.pop() if levels else ""


def _levels(expr: m.FieldExpr) -> set[str]:
    if isinstance(expr, m.Attribute):
        return {expr.scope} if expr.scope in ("event", "link") else set()
    if isinstance(expr, m.Intrinsic):
        prefix = expr.name.partition(":")[0]
        return {prefix} if prefix in ("event", "link") and ":" in expr.name else set()
    if isinstance(expr, m.BinaryOp):
        return _levels(expr.lhs) | _levels(expr.rhs)
    if isinstance(expr, m.UnaryOp):
        return _levels(expr.operand)
    return set()


def _mirror(op: str) -> str:
    if op in ("=~", "!~"):
        raise TraceQLError(f"the regular expression must be on the right of {op}")
    return {"<": ">", "<=": ">=", ">": "<", ">=": "<="}.get(op, op)


def _describe(expr: object) -> str:
    if isinstance(expr, m.Attribute):
        return f"the attribute {expr.label()}"
    if isinstance(expr, m.Intrinsic):
        return f"the intrinsic {expr.name}"
    return type(expr).__name__
