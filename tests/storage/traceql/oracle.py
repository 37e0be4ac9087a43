"""The TraceQL oracle: the query model evaluated span by span in plain Python.

It shares nothing with the engine but the query model and the parser: every filter is decided on
Python dicts of span rows, with the semantics documented in ``storage/traceql/compile.py`` and
``docs/traceql.md``. The engine (SQL + per-trace evaluation) must agree with it on every query.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from spanlake.storage.attributes import attr_value
from spanlake.storage.schema import ValueType
from spanlake.storage.traceql import model as m
from tests.storage import matching

STATUS = {"unset": 0, "ok": 1, "error": 2}
KIND = {"unspecified": 0, "internal": 1, "server": 2, "client": 3, "producer": 4, "consumer": 5}
STATUS_NAME = {v: k for k, v in STATUS.items()}
KIND_NAME = {v: k for k, v in KIND.items()}
OPS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt,
    ">=": operator.ge,
}
ATTR_COLUMNS = {"span": "span_attributes", "resource": "resource_attributes",
                "instrumentation": "scope_attributes"}


Sub = tuple[str, dict[str, Any]] | None  # the event or link a comparison is evaluated on


class OracleError(Exception):
    pass


@dataclass
class Val:
    type: str  # str num bool status kind nil attrs
    value: Any


@dataclass
class OSpanset:
    spans: frozenset[bytes]  # span IDs
    labels: tuple[tuple[str, Any], ...] = ()


class TraceView:
    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows
        self.by_id = {r["span_id"]: r for r in rows}
        starts = [r["start_time_unix_nano"] for r in rows]
        self.duration = max(r["end_time_unix_nano"] for r in rows) - min(starts)
        roots = sorted((r for r in rows if r["parent_span_id"] is None),
                       key=lambda r: r["start_time_unix_nano"])
        self.root_name = roots[0]["name"] if roots else None
        self.root_service = roots[0]["service_name"] if roots else None

    def parent(self, sid: bytes) -> bytes | None:
        p = self.by_id[sid]["parent_span_id"]
        return p if p in self.by_id else None

    def ancestors(self, sid: bytes) -> list[bytes]:
        out, p = [], self.parent(sid)
        while p is not None and p not in out and p != sid:
            out.append(p)
            p = self.parent(p)
        return out

    def children(self, sid: bytes) -> list[bytes]:
        return [r["span_id"] for r in self.rows if r["parent_span_id"] == sid and r["span_id"] != sid]


def search(spans: pa.Table, query: m.Query, lo: int, hi: int) -> list[tuple[bytes, list[OSpanset]]]:
    """Matching traces, newest first (latest span start in the window), with their spansets."""
    traces: dict[bytes, list[dict[str, Any]]] = {}
    for row in spans.to_pylist():
        if lo <= row["start_time_unix_nano"] <= hi:
            traces.setdefault(row["trace_id"], []).append(row)
    leaves = list(_leaves(query.pipeline))
    out = []
    for trace_id, rows in traces.items():
        view = TraceView(rows)
        sets = _pipeline(query.pipeline, view, frozenset(view.by_id))
        if sets:
            # newest first: the latest start of a span that matches one of the query's filters
            starts = [r["start_time_unix_nano"] for r in rows
                      if any(matches(f.expr, r, view) for f in leaves)]
            out.append((trace_id, sets, max(starts)))
    out.sort(key=lambda t: (-t[2], t[0]))
    return [(t, s) for t, s, _ in out]


def _leaves(node: object) -> Iterator[m.SpansetFilter]:
    if isinstance(node, m.SpansetFilter):
        yield node
    elif isinstance(node, m.Pipeline):
        for stage in node.stages:
            yield from _leaves(stage)
    elif isinstance(node, m.SpansetOp):
        yield from _leaves(node.lhs)
        yield from _leaves(node.rhs)


# --- spansets ------------------------------------------------------------------------------------
def _pipeline(p: m.Pipeline, view: TraceView, universe: frozenset[bytes]) -> list[OSpanset]:
    sets = _expr(p.stages[0], view, universe)
    for stage in p.stages[1:]:
        if not sets:
            return []
        if isinstance(stage, m.ScalarFilter):
            sets = [s for s in sets if _scalar_holds(stage, view, s)]
        elif isinstance(stage, m.GroupBy):
            sets = [g for s in sets for g in _group(stage, view, s)]
        elif isinstance(stage, m.Coalesce):
            sets = [OSpanset(frozenset().union(*(s.spans for s in sets)))]
        elif isinstance(stage, m.Select):
            pass
        else:
            sets = [OSpanset(r.spans, s.labels + r.labels) for s in sets for r in _expr(stage, view, s.spans)]
    return sets


def _expr(e: m.Stage, view: TraceView, universe: frozenset[bytes]) -> list[OSpanset]:
    if isinstance(e, m.SpansetFilter):
        hit = frozenset(sid for sid in universe if matches(e.expr, view.by_id[sid], view))
        return [OSpanset(hit)] if hit else []
    if isinstance(e, m.Pipeline):
        return _pipeline(e, view, universe)
    assert isinstance(e, m.SpansetOp)
    lhs, rhs = _expr(e.lhs, view, universe), _expr(e.rhs, view, universe)
    negated = e.op.startswith("!")
    if e.op == "||":
        if not lhs or not rhs:
            return lhs or rhs
    elif not negated and (not lhs or not rhs):
        return []
    if negated and not rhs:
        return []
    out = []
    for r in rhs:
        for left in lhs or [OSpanset(frozenset())]:
            if e.op in ("&&", "||"):
                spans = left.spans | r.spans
            else:
                spans = _structural(e.op, left.spans, r.spans, view)
            if spans:
                out.append(OSpanset(spans, left.labels + r.labels))
    return out


def _structural(op: str, lhs: frozenset[bytes], rhs: frozenset[bytes], view: TraceView) -> frozenset[bytes]:
    base = op.lstrip("!&")
    keep: set[bytes] = set()
    for b in rhs:
        if base == ">":
            rel = {a for a in lhs if view.parent(b) == a}
        elif base == ">>":
            rel = {a for a in lhs if a in view.ancestors(b)}
        elif base == "<":
            rel = {a for a in lhs if view.parent(a) == b}
        elif base == "<<":
            rel = {a for a in lhs if b in view.ancestors(a)}
        else:
            p = view.parent(b)
            rel = {a for a in lhs if a != b and p is not None and view.parent(a) == p}
        if op.startswith("!"):
            if not rel:
                keep.add(b)
        elif rel:
            keep.add(b)
            if op.startswith("&"):
                keep |= rel
    return frozenset(keep)


def _scalar_holds(f: m.ScalarFilter, view: TraceView, s: OSpanset) -> bool:
    a, b = _scalar(f.lhs, view, s), _scalar(f.rhs, view, s)
    return a is not None and b is not None and OPS[f.op](a, b)


def _scalar(e: m.ScalarExpr, view: TraceView, s: OSpanset) -> float | None:
    if isinstance(e, m.Static):
        return float(e.value)
    if isinstance(e, m.ScalarOp):
        a, b = _scalar(e.lhs, view, s), _scalar(e.rhs, view, s)
        return None if a is None or b is None else _arith(e.op, a, b)
    if e.fn == "count":
        return float(len(s.spans))
    assert e.expr is not None
    nums = [x for x in (_number(value_of(e.expr, view.by_id[sid], view)) for sid in s.spans) if x is not None]
    if not nums:
        return None
    return {"sum": math.fsum(nums), "avg": math.fsum(nums) / len(nums), "min": min(nums),
            "max": max(nums)}[e.fn]


def _group(g: m.GroupBy, view: TraceView, s: OSpanset) -> list[OSpanset]:
    groups: dict[str, tuple[tuple[Any, ...], set[bytes]]] = {}
    for sid in s.spans:
        values = tuple(value_of(e, view.by_id[sid], view) for e in g.exprs)
        # repr keeps int 1, double 1.0 and true apart (Python's == would merge them)
        groups.setdefault(repr(values), (values, set()))[1].add(sid)
    labels = [e.label() if isinstance(e, m.Attribute | m.Intrinsic) else str(e) for e in g.exprs]
    return [OSpanset(frozenset(v), s.labels + tuple(zip(labels, k, strict=True))) for k, v in groups.values()]


# --- one span ------------------------------------------------------------------------------------
def matches(e: m.FieldExpr, span: dict[str, Any], view: TraceView) -> bool:
    return _bool(e, span, view, None)


def _bool(e: m.FieldExpr, span: dict[str, Any], view: TraceView, sub: Sub) -> bool:
    group = _event_group(e) if sub is None else ""
    if group:  # event (link) conditions joined by && / ||: on one and the same event (link)
        items = span["events"] if group == "event" else span["links"]
        return any(_bool(e, span, view, (group, item)) for item in items)
    if isinstance(e, m.BinaryOp) and e.op == "&&":
        return _bool(e.lhs, span, view, sub) and _bool(e.rhs, span, view, sub)
    if isinstance(e, m.BinaryOp) and e.op == "||":
        return _bool(e.lhs, span, view, sub) or _bool(e.rhs, span, view, sub)
    if isinstance(e, m.UnaryOp) and e.op == "!":
        return not _bool(e.operand, span, view, sub)
    if isinstance(e, m.Static):
        return bool(e.value)
    if isinstance(e, m.Attribute):
        return _bool(m.BinaryOp("=", e, m.Static("bool", True)), span, view, sub)
    if isinstance(e, m.TagText):  # Jaeger's tag semantics: the reference in tests/storage/matching.py
        if e.resource_only:
            return matching.tag_holds(span, "resource." + e.key, e.value)
        return any(matching._any_match(attrs, e.key, e.value) for attrs in matching._attribute_lists(span))
    assert isinstance(e, m.BinaryOp)
    level = _level(e)
    if level and sub is None:
        items = span["events"] if level == "event" else span["links"]
        return any(_bool(e, span, view, (level, item)) for item in items)
    return _compare(e.op, _val(e.lhs, span, view, sub), _val(e.rhs, span, view, sub))


def _event_group(e: m.FieldExpr) -> str:
    """The level shared by every comparison of an &&/|| tree of comparisons, else ""."""
    if not (isinstance(e, m.BinaryOp) and e.op in ("&&", "||")):
        return ""
    found = []
    for side in (e.lhs, e.rhs):
        if isinstance(side, m.BinaryOp) and side.op in ("&&", "||"):
            found.append(_event_group(side))
        elif isinstance(side, m.BinaryOp) and side.op in (*OPS, "=~", "!~"):
            found.append(_level(side))
        else:
            return ""
    return found[0] if found[0] and all(f == found[0] for f in found) else ""


def _level(e: m.FieldExpr) -> str:
    if isinstance(e, m.Attribute):
        return e.scope if e.scope in ("event", "link") else ""
    if isinstance(e, m.Intrinsic):
        return e.name.split(":")[0] if e.name.startswith(("event:", "link:")) else ""
    if isinstance(e, m.BinaryOp):
        return _level(e.lhs) or _level(e.rhs)
    if isinstance(e, m.UnaryOp):
        return _level(e.operand)
    return ""


def _compare(op: str, a: Val, b: Val) -> bool:
    if b.type == "attrs" and a.type != "attrs":
        a, b = b, a
        op = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}.get(op, op)
    if a.type == "attrs":
        if b.type == "nil":
            return (len(a.value) == 0) == (op == "=")
        return any(_member(op, row, b) for row in a.value)
    if a.type == "nil" or b.type == "nil":
        other = b if a.type == "nil" else a
        return (other.value is None) == (op == "=")
    if a.value is None or b.value is None:
        return False
    if op in ("=~", "!~"):
        hit = re.fullmatch(b.value, a.value) is not None
        return hit if op == "=~" else not hit
    if a.type != b.type:
        raise OracleError(f"cannot compare {a.type} with {b.type}")
    return OPS[op](a.value, b.value)


def _member(op: str, row: dict[str, Any], b: Val) -> bool:
    t = row["type"]
    if op in ("=~", "!~"):
        if t != ValueType.STRING:
            return False
        hit = re.fullmatch(b.value, row["str"]) is not None
        return hit if op == "=~" else not hit
    if b.type == "str":
        return t == ValueType.STRING and OPS[op](row["str"], b.value)
    if b.type in ("status", "kind"):
        names = STATUS_NAME if b.type == "status" else KIND_NAME
        return t == ValueType.STRING and OPS[op](row["str"], names[b.value])
    if b.type == "num":
        if t == ValueType.INT:
            return OPS[op](row["int"], b.value)
        return t == ValueType.DOUBLE and OPS[op](row["double"], b.value)
    if b.type == "bool":
        return t == ValueType.BOOL and OPS[op](row["bool"], b.value)
    raise OracleError(f"cannot compare an attribute with {b.type}")


def _val(e: m.FieldExpr, span: dict[str, Any], view: TraceView, sub: Sub) -> Val:
    if isinstance(e, m.Static):
        if e.type == "string":
            return Val("str", e.value)
        if e.type in ("int", "float", "duration"):
            return Val("num", e.value)
        if e.type == "status":
            return Val("status", STATUS[e.value])
        if e.type == "kind":
            return Val("kind", KIND[e.value])
        return Val(e.type, e.value)
    if isinstance(e, m.Attribute):
        return Val("attrs", _attrs(e, span, sub))
    if isinstance(e, m.Intrinsic):
        return _intrinsic(e.name, span, view, sub)
    if isinstance(e, m.UnaryOp) and e.op == "-":
        x = _num(_val(e.operand, span, view, sub))
        return Val("num", None if x is None else -x)
    if isinstance(e, m.BinaryOp) and e.op in ("+", "-", "*", "/", "%", "^"):
        a, b = _num(_val(e.lhs, span, view, sub)), _num(_val(e.rhs, span, view, sub))
        return Val("num", None if a is None or b is None else _arith(e.op, a, b))
    return Val("bool", _bool(e, span, view, sub))


def _attrs(a: m.Attribute, span: dict[str, Any], sub: Sub) -> list[dict[str, Any]]:
    if a.scope in ("event", "link"):
        assert sub is not None and sub[0] == a.scope
        return [r for r in sub[1]["attributes"] if r["key"] == a.name]
    columns = [ATTR_COLUMNS[a.scope]] if a.scope else ["span_attributes", "resource_attributes"]
    return [r for c in columns for r in span[c] if r["key"] == a.name]


def _num(v: Val) -> float | None:
    if v.type == "attrs":
        for row in v.value:
            if row["type"] == ValueType.INT:
                return float(row["int"])
            if row["type"] == ValueType.DOUBLE:
                return float(row["double"])
        return None
    if v.type != "num":
        raise OracleError(f"arithmetic needs numbers, not {v.type}")
    return None if v.value is None else float(v.value)


def _intrinsic(name: str, span: dict[str, Any], view: TraceView, sub: Sub) -> Val:
    item = sub[1] if sub else None
    hexid = lambda b: None if b is None else bytes(b).hex()  # noqa: E731
    table: dict[str, Callable[[], Val]] = {
        "name": lambda: Val("str", span["name"]),
        "status": lambda: Val("status", span["status_code"]),
        "statusMessage": lambda: Val("str", span["status_message"]),
        "kind": lambda: Val("kind", span["kind"]),
        "duration": lambda: Val("num", span["duration_nano"]),
        "span:id": lambda: Val("str", hexid(span["span_id"])),
        "span:parentID": lambda: Val("str", hexid(span["parent_span_id"])),
        "trace:id": lambda: Val("str", hexid(span["trace_id"])),
        "trace:duration": lambda: Val("num", view.duration),
        "trace:rootName": lambda: Val("str", view.root_name),
        "trace:rootService": lambda: Val("str", view.root_service),
        "instrumentation:name": lambda: Val("str", span["scope_name"]),
        "instrumentation:version": lambda: Val("str", span["scope_version"]),
        "event:name": lambda: Val("str", item["name"] if item else None),
        "event:timeSinceStart": lambda: Val("num", item["time_unix_nano"] - span["start_time_unix_nano"]
                                            if item else None),
        "link:traceID": lambda: Val("str", hexid(item["trace_id"]) if item else None),
        "link:spanID": lambda: Val("str", hexid(item["span_id"]) if item else None),
        # only its sign is compared in filters: -1 for a root, positive for every other span
        "nestedSetParent": lambda: Val("num", -1 if span["parent_span_id"] is None else 1),
    }
    return table[name]()


def value_of(e: m.FieldExpr, span: dict[str, Any], view: TraceView) -> Any:
    """A span's value of ``e`` as by()/aggregates read it (first attribute, span before resource)."""
    if isinstance(e, m.Attribute):
        if e.scope in ("event", "link"):
            items = span["events"] if e.scope == "event" else span["links"]
            rows = [r for it in items for r in it["attributes"] if r["key"] == e.name]
        else:
            rows = _attrs(e, span, None)
        return attr_value(rows[0]) if rows else None
    if isinstance(e, m.Intrinsic):
        if e.name.startswith(("event:", "link:")):
            items = span["events"] if e.name.startswith("event:") else span["links"]
            return _intrinsic(e.name, span, view, (e.name[:4], items[0])).value if items else None
        v = _intrinsic(e.name, span, view, None)
        if v.type == "status":
            return STATUS_NAME[v.value]
        if v.type == "kind":
            return KIND_NAME[v.value]
        return v.value
    v = _val(e, span, view, None)
    return v.value


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _arith(op: str, a: float, b: float) -> float | None:
    try:
        return {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b, "/": lambda: a / b,
                "%": lambda: math.fmod(a, b), "^": lambda: float(a**b)}[op]()
    except (ZeroDivisionError, OverflowError, ValueError):
        return None
