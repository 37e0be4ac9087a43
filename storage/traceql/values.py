"""Field expressions read as values (for ``select()``, ``by()``, aggregates, matched attributes).

Each becomes one SQL column; ``to_python`` turns what DuckDB returns into a typed Python value
(an attribute struct into its OTLP-typed value, a status code into its name...).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from spanlake.storage.attributes import attr_value
from spanlake.storage.schema import SPAN_KIND_NAMES, ValueType
from spanlake.storage.traceql import model as m
from spanlake.storage.traceql.compile import INTRINSIC_SQL, TRACE_INTRINSICS, TREE_INTRINSICS, Compiler

_STATUS_NAMES = {0: "unset", 1: "ok", 2: "error"}
_KIND_NAMES = {**SPAN_KIND_NAMES, 0: "unspecified"}
_FIRST = {  # event and link intrinsics read as values: those of the first event / link
    "event:name": ("(events[1]).name", "str"),
    "event:timeSinceStart": ("((events[1]).time_unix_nano - start_time_unix_nano)", "duration"),
    "link:traceID": ("lower(hex((links[1]).trace_id))", "str"),
    "link:spanID": ("lower(hex((links[1]).span_id))", "str"),
}


@dataclass(frozen=True)
class ValueSpec:
    expr: m.FieldExpr
    kind: str  # attr str num duration status kind bool tree

    @property
    def label(self) -> str:
        """The expression as written (metrics series labels)."""
        if isinstance(self.expr, m.Attribute | m.Intrinsic):
            return self.expr.label()
        return str(self.expr)

    @property
    def key(self) -> str:
        """The attribute key in search results: the name without its scope, as Tempo shows it."""
        if isinstance(self.expr, m.Attribute):
            return self.expr.name
        return self.label


def value_spec(expr: m.FieldExpr) -> ValueSpec:
    if isinstance(expr, m.Attribute):
        return ValueSpec(expr, "attr")
    if isinstance(expr, m.Intrinsic):
        if expr.name in TREE_INTRINSICS:
            return ValueSpec(expr, "tree")
        if expr.name in ("duration", "trace:duration", "event:timeSinceStart"):
            return ValueSpec(expr, "duration")
        _, kind = INTRINSIC_SQL.get(expr.name, ("", "str"))
        return ValueSpec(expr, kind if kind in ("status", "kind") else "str")
    if isinstance(expr, m.Static):
        kinds = {"string": "str", "int": "num", "float": "num", "duration": "duration", "bool": "bool"}
        return ValueSpec(expr, kinds.get(expr.type, "str"))
    if (isinstance(expr, m.BinaryOp) and expr.op in ("+", "-", "*", "/", "%", "^")) or \
            (isinstance(expr, m.UnaryOp) and expr.op == "-"):
        return ValueSpec(expr, "num")
    return ValueSpec(expr, "bool")


def value_sql(spec: ValueSpec, compiler: Compiler) -> str:
    expr = spec.expr
    if spec.kind == "tree":
        return "NULL"
    if isinstance(expr, m.Attribute):
        return attr_text_sql(_attribute_struct_sql(expr, compiler))
    if isinstance(expr, m.Intrinsic):
        if expr.name in _FIRST:
            return _FIRST[expr.name][0]
        if expr.name in TRACE_INTRINSICS:
            compiler.uses_trace_stats = True
        return INTRINSIC_SQL[expr.name][0]
    if spec.kind == "bool":
        return compiler.condition(expr)
    typed = compiler._typed(expr, "")
    return compiler.attr_number(typed.sql) if typed.type == "attrs" else typed.sql


def _attribute_struct_sql(expr: m.Attribute, compiler: Compiler) -> str:
    """The first attribute struct ``expr`` names on a span (span before resource when unscoped)."""
    if expr.scope in ("event", "link"):
        var, column = ("e", "events") if expr.scope == "event" else ("l", "links")
        inner = compiler.attribute_list(expr, var)
        return f"flatten(list_transform({column}, lambda {var}: {inner}))[1]"
    if not expr.scope:
        span = compiler.attribute_list(m.Attribute("span", expr.name), "")
        resource = compiler.attribute_list(m.Attribute("resource", expr.name), "")
        return f"coalesce(({span})[1], ({resource})[1])"
    return f"({compiler.attribute_list(expr, '')})[1]"


def attr_text_sql(struct_sql: str) -> str:
    """An attribute struct as typed text (``s:api``, ``i:500``, ``f:0.25``, ``b:true``, ``x:<base64>``,
    ``a:``/``k:`` + OTLP/JSON, ``e:``): DuckDB hands back a string per row, far cheaper to bring into
    Python than a struct, and one text works as a group key. (list_transform over a one-item list
    binds the struct once.)"""
    return (f"list_transform([{struct_sql}], lambda x: CASE x.type WHEN 1 THEN 's:' || x.str "
            f"WHEN 2 THEN 'b:' || x.bool::VARCHAR WHEN 3 THEN 'i:' || x.int::VARCHAR "
            f"WHEN 4 THEN 'f:' || printf('%.17g', x.double) WHEN 5 THEN 'x:' || base64(x.bytes) "
            f"WHEN 6 THEN 'a:' || x.str WHEN 7 THEN 'k:' || x.str WHEN 0 THEN 'e:' END)[1]")


def decode_text(text: str | None) -> Any:
    """The Python value of ``attr_text_sql``'s text (and of ``metrics.encode``'s)."""
    if text is None:
        return None
    kind, _, body = text.partition(":")
    if kind == "s":
        return body
    if kind == "b":
        return body == "true"
    if kind == "i":
        return int(body)
    if kind == "f":
        return float(body)
    if kind == "x":
        return base64.b64decode(body)
    if kind in ("a", "k"):
        return attr_value({"type": ValueType.ARRAY if kind == "a" else ValueType.KVLIST, "str": body})
    return None


def to_python(spec: ValueSpec, raw: Any) -> Any:
    """The typed value of one cell of a value column."""
    if raw is None:
        return None
    if spec.kind == "attr":
        return decode_text(raw)
    if spec.kind == "status":
        return _STATUS_NAMES.get(int(raw), str(raw))
    if spec.kind == "kind":
        return _KIND_NAMES.get(int(raw), str(raw))
    return raw


def as_number(value: Any) -> float | None:
    """A value as a number for aggregates (bools and text are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
