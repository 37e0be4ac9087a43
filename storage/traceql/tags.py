"""Tag names and values for autocomplete (Tempo's ``/api/v2/search/tags`` and ``.../values``).

Values are typed as Tempo types them (``string``, ``int``, ``float``, ``bool``, ``duration``,
``keyword`` for the enums), and can be restricted to spans matching a spanset filter.
"""

from __future__ import annotations

from typing import Any

from spanlake.storage.schema import ValueType
from spanlake.storage.traceql import model as m
from spanlake.storage.traceql.compile import TRACE_STATS_SQL, TRACE_WINDOW, Compiler
from spanlake.storage.traceql.engine import SqlSource, used_params
from spanlake.storage.traceql.errors import TraceQLError
from spanlake.storage.traceql.values import to_python, value_spec, value_sql

# Intrinsics offered in the "intrinsic" scope (Grafana merges its own list in).
INTRINSIC_TAGS = ["duration", "event:name", "event:timeSinceStart", "instrumentation:name",
                  "instrumentation:version", "kind", "name", "rootName", "rootServiceName",
                  "span:duration", "span:id", "span:kind", "span:name", "span:parentID",
                  "span:status", "span:statusMessage", "status", "statusMessage", "trace:duration",
                  "trace:id", "trace:rootName", "trace:rootService", "traceDuration"]
_KEY_SQL = {
    "span": "list_transform(span_attributes, lambda a: a.key)",
    "resource": "list_transform(resource_attributes, lambda a: a.key)",
    "instrumentation": "list_transform(scope_attributes, lambda a: a.key)",
    "event": "flatten(list_transform(events, lambda e: list_transform(e.attributes, lambda a: a.key)))",
    "link": "flatten(list_transform(links, lambda l: list_transform(l.attributes, lambda a: a.key)))",
}
SCOPES = ("resource", "span", "event", "link", "instrumentation")
_TYPE_NAMES = {ValueType.STRING: "string", ValueType.INT: "int", ValueType.DOUBLE: "float",
               ValueType.BOOL: "bool"}
_LIST_INTRINSICS = {
    "event:name": "list_transform(events, lambda e: e.name)",
    "link:traceID": "list_transform(links, lambda l: lower(hex(l.trace_id)))",
    "link:spanID": "list_transform(links, lambda l: lower(hex(l.span_id)))",
}
# Trace-level intrinsics read from the root spans themselves.
_ROOT_INTRINSICS = {"trace:rootService": ("service_name", True), "trace:rootName": ("name", True)}
_INTRINSIC_TYPES = {"status": "keyword", "kind": "keyword", "duration": "duration", "str": "string"}


def tag_names(reader: SqlSource, scopes: list[str], start_ns: int | None, end_ns: int | None,
              limit: int) -> dict[str, list[str]]:
    """Attribute keys per scope (``intrinsic`` lists the intrinsics)."""
    out: dict[str, list[str]] = {}
    window, params = _window(start_ns, end_ns)
    for scope in scopes:
        if scope == "intrinsic":
            out[scope] = INTRINSIC_TAGS[:limit]
            continue
        sql = (f"SELECT DISTINCT k FROM (SELECT unnest({_KEY_SQL[scope]}) AS k FROM {{spans}} "
               f"WHERE {window}) ORDER BY k LIMIT $limit")
        table = reader.run_sql(sql, {**params, "limit": limit}, start_ns, end_ns)
        out[scope] = [str(k) for k in table.column("k").to_pylist()]
    return out


def tag_values(reader: SqlSource, tag: m.Attribute | m.Intrinsic, where: m.FieldExpr | None,
               start_ns: int | None, end_ns: int | None, limit: int) -> list[tuple[str, Any]]:
    """Distinct (type, value) pairs of ``tag`` on spans in the window that satisfy ``where``."""
    compiler = Compiler()
    window, params = _window(start_ns, end_ns)
    cond = _condition(compiler, where)
    source = "{spans}"
    if compiler.uses_trace_stats:
        source = f"(SELECT *, {TRACE_STATS_SQL} FROM {{spans}} WHERE {window} {TRACE_WINDOW})"
    if isinstance(tag, m.Intrinsic) and tag.name == "trace:duration":
        return []  # one value per trace: nothing to pick from
    spec = value_spec(tag)
    if isinstance(tag, m.Attribute):
        lists = _attribute_lists(compiler, tag)
        sql = (f"SELECT DISTINCT a.type AS t, a.str AS s, a.int AS i, a.double AS d, a.bool AS b "
               f"FROM (SELECT unnest({lists}) AS a FROM {source} WHERE {window} AND ({cond})) "
               f"WHERE a.type IN (1, 2, 3, 4) LIMIT $limit")
    elif tag.name in _LIST_INTRINSICS:  # every event's (link's) value, not only the first one's
        sql = (f"SELECT DISTINCT v FROM (SELECT unnest({_LIST_INTRINSICS[tag.name]}) AS v FROM {source} "
               f"WHERE {window} AND ({cond})) LIMIT $limit")
    else:
        column, root_only = _ROOT_INTRINSICS.get(tag.name, (value_sql(spec, compiler), False))
        if root_only:
            cond += " AND parent_span_id IS NULL"
        sql = (f"SELECT DISTINCT ({column}) AS v FROM {source} "
               f"WHERE {window} AND ({cond}) LIMIT $limit")
    all_params = {**compiler.params, **params, "limit": limit}
    table = reader.run_sql(sql, used_params(all_params, sql), start_ns, end_ns)
    if isinstance(tag, m.Attribute):
        out = []
        for row in table.to_pylist():
            t = row["t"]
            value = {1: row["s"], 2: row["b"], 3: row["i"], 4: row["d"]}[t]
            out.append((_TYPE_NAMES[ValueType(t)], value))
        return sorted(out, key=lambda p: (p[0], str(p[1])))
    kind = _INTRINSIC_TYPES.get(spec.kind, "string")
    raw = table.column("v").to_pylist()
    if kind == "duration":
        return [(kind, go_duration(v)) for v in sorted(v for v in raw if v is not None)]
    values = {to_python(spec, v) for v in raw} - {None, ""}
    return sorted((kind, v) for v in values)


def _condition(compiler: Compiler, where: m.FieldExpr | None) -> str:
    """``where`` as SQL; a filter that cannot compile is ignored, like one that does not parse."""
    if where is None:
        return "TRUE"
    try:
        return compiler.condition(where)
    except TraceQLError:
        return "TRUE"


def go_duration(ns: int) -> str:
    """Go's ``time.Duration.String``: ``150ms``, ``1.5s``, ``2m3.000000004s``, ``850ns``."""
    sign, ns = ("-", -ns) if ns < 0 else ("", ns)
    if ns < 1_000:
        return f"{sign}{ns}ns"
    if ns < 1_000_000:
        return f"{sign}{_trim(ns / 1_000)}µs"
    if ns < 1_000_000_000:
        return f"{sign}{_trim(ns / 1_000_000)}ms"
    hours, rest = divmod(ns, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    seconds = f"{rest // 10**9}" + (f".{rest % 10**9:09d}".rstrip("0") if rest % 10**9 else "")
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if hours or minutes else "") + f"{seconds}s"
    return sign + text


def _trim(value: float) -> str:
    return f"{value:.9f}".rstrip("0").rstrip(".")


def _attribute_lists(compiler: Compiler, tag: m.Attribute) -> str:
    if tag.scope in ("event", "link"):
        key = compiler.param(tag.name)
        var, column = ("e", "events") if tag.scope == "event" else ("l", "links")
        return f"flatten(list_transform({column}, lambda {var}: list_filter({var}.attributes, " \
               f"lambda a: a.key = {key})))"
    return compiler.attribute_list(tag, "")


def _window(start_ns: int | None, end_ns: int | None) -> tuple[str, dict[str, Any]]:
    conds, params = ["TRUE"], {}
    if start_ns is not None:
        conds.append("start_time_unix_nano >= $lo")
        params["lo"] = start_ns
    if end_ns is not None:
        conds.append("start_time_unix_nano <= $hi")
        params["hi"] = end_ns
    return " AND ".join(conds), params
