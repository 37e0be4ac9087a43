"""TraceQL metrics: matched spans -> time series, aggregated by DuckDB.

The matched spans form one relation ``(trace_id, ts, val, g0..gN)``: straight from SQL when the
query is one spanset filter, else built from the per-trace evaluation. ``val`` is the function's
argument as a number (durations in seconds, as Tempo reports them); the groups ``g`` are typed text
(``s:api``, ``i:500``, ``f:1.5``, ``b:true``) so one SQL works for both paths and labels keep
their types.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from spanlake.storage.traceql import model as m
from spanlake.storage.traceql import prune
from spanlake.storage.traceql.compile import TRACE_STATS_SQL, TRACE_WINDOW
from spanlake.storage.traceql.engine import Inspection, TraceQLEngine, used_params
from spanlake.storage.traceql.errors import TraceQLError, Unsupported
from spanlake.storage.traceql.plan import Plan
from spanlake.storage.traceql.values import ValueSpec, decode_text, value_spec

Label = tuple[str, Any]
_COUNTING = ("rate", "count_over_time", "histogram_over_time")


@dataclass
class Series:
    labels: tuple[Label, ...]
    samples: dict[int, float] = field(default_factory=dict)  # bucket start (ms) -> value
    exemplars: list[tuple[str, int, float]] = field(default_factory=list)  # trace ID hex, ms, value


def query_range(engine: TraceQLEngine, query: m.Query, start_ns: int, end_ns: int, step_ns: int,
                max_exemplars: int = 0, inspection: Inspection | None = None) -> list[Series]:
    """The series of a metrics query over ``[start, end)`` in buckets of ``step``."""
    metric = query.metrics
    if metric is None:
        raise TraceQLError("not a metrics query: end it with a metrics function such as | rate()")
    if step_ns <= 0:
        raise TraceQLError("step must be positive")
    if (end_ns - start_ns) // step_ns > 11_000:
        raise TraceQLError("too many buckets: raise step (at most 11000 points per series)")
    if isinstance(metric, m.MetricsCompare):
        return compare(engine, query.pipeline, metric, start_ns, end_ns, step_ns)
    if metric.fn not in ("rate", "count_over_time") and metric.expr is None:
        raise TraceQLError(f"{metric.fn} needs an argument")
    plan = Plan(query.pipeline, (*metric.by, *((metric.expr,) if metric.expr is not None else ())))
    rows = _aggregate(engine, plan, metric, start_ns, end_ns, step_ns, inspection or Inspection())
    series = _series(rows, metric, start_ns, step_ns, (end_ns - start_ns + step_ns - 1) // step_ns)
    if query.second_stage is not None:
        series = _top(series, query.second_stage)
    _trim_exemplars(series, max_exemplars)
    return series


# --- the matched-spans relation -----------------------------------------------------------------
def _aggregate(engine: TraceQLEngine, plan: Plan, metric: m.MetricsAggregate, start_ns: int,
               end_ns: int, step_ns: int, inspection: Inspection) -> list[dict[str, Any]]:
    by = [value_spec(e) for e in metric.by]
    val = value_spec(metric.expr) if metric.expr is not None else None
    simple = len(plan.pipeline.stages) == 1 and isinstance(plan.pipeline.stages[0], m.SpansetFilter) \
        and not any(v.kind == "tree" for v in plan.values)
    params: dict[str, Any] = {"lo": start_ns, "hi": end_ns, "step": step_ns}
    tables: dict[str, pa.Table] = {}
    if simple:
        stage = plan.pipeline.stages[0]
        assert isinstance(stage, m.SpansetFilter)
        cond = plan.filter_sql[plan.filter_index(stage)]
        groups = [f"{_encode_sql(plan.value_sql[plan.value_index(s.expr)], s)} AS g{n}"
                  for n, s in enumerate(by)]
        value = _number_sql(plan.value_sql[plan.value_index(val.expr)], val) if val else "NULL::DOUBLE"
        stats = f", {TRACE_STATS_SQL}" if plan.compiler.uses_trace_stats else ""
        window = TRACE_WINDOW if plan.compiler.uses_trace_stats else ""
        source = (f"(SELECT *{stats} FROM {{spans}} WHERE start_time_unix_nano >= $lo "
                  f"AND start_time_unix_nano < $hi {window})")
        relation = (f"(SELECT trace_id, start_time_unix_nano AS ts, {value} AS val"
                    f"{''.join(', ' + g for g in groups)} FROM {source} WHERE {cond})")
        params.update(plan.compiler.params)
    else:
        tables["_matched"] = _matched_table(engine, plan, by, val, start_ns, end_ns, inspection)
        relation = "_matched"
    group_cols = [f"g{n}" for n in range(len(by))]
    if metric.fn == "histogram_over_time":
        group_cols.append("CASE WHEN val > 0 THEN pow(2, ceil(log2(val))) ELSE 0 END AS hb")
    aggregates = ["count(*) AS n", "sum(val) AS s", "min(val) AS mn", "max(val) AS mx", "avg(val) AS av",
                  "arg_max(trace_id, coalesce(val, 0)) AS ex_id", "max(ts) AS ex_ts"]
    if metric.fn == "quantile_over_time":
        aggregates.append("quantile_cont(val, $qs) AS qs")
        params["qs"] = list(metric.quantiles)
    keys = ["(ts - $lo) // $step AS b", *group_cols]
    sql = (f"SELECT {', '.join(keys + aggregates)} FROM {relation} "
           f"WHERE ts >= $lo AND ts < $hi GROUP BY ALL")
    skip = prune.segment_filter(plan.filters) if simple and not plan.compiler.uses_trace_stats else None
    table = engine.reader.run_sql(sql, used_params(params, sql), start_ns, end_ns, tables=tables,
                                  segment_filter=skip)
    rows: list[dict[str, Any]] = table.to_pylist()
    return rows


def _matched_table(engine: TraceQLEngine, plan: Plan, by: list[ValueSpec], val: ValueSpec | None,
                   start_ns: int, end_ns: int, inspection: Inspection) -> pa.Table:
    """Matched spans of a query that needs the per-trace evaluation, as the relation above."""
    ids, ts, vals = [], [], []
    groups: list[list[str | None]] = [[] for _ in by]
    for match in engine.iter_matches(plan, start_ns, end_ns - 1, None, inspection):
        for n in sorted({n for s in match.spansets for n in s.spans}):
            row = match.rows[n]
            ids.append(match.trace_id)
            ts.append(row["start_time_unix_nano"])
            raw = row[f"v{plan.value_index(val.expr)}"] if val is not None else None
            vals.append(_number(raw, val))
            for g, spec in zip(groups, by, strict=True):
                n = plan.value_index(spec.expr)
                g.append(row[f"r{n}"] if spec.kind == "attr" else encode(row[f"v{n}"]))
    columns: dict[str, Any] = {"trace_id": pa.array(ids, pa.binary(16)), "ts": pa.array(ts, pa.int64()),
                               "val": pa.array(vals, pa.float64())}
    columns.update({f"g{n}": pa.array(g, pa.string()) for n, g in enumerate(groups)})
    return pa.table(columns)


# --- typed group text ---------------------------------------------------------------------------
def encode(value: Any) -> str | None:
    """A typed value as group text (the Python twin of ``values.attr_text_sql``)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return f"b:{'true' if value else 'false'}"
    if isinstance(value, int):
        return f"i:{value}"
    if isinstance(value, float):
        return f"f:{value!r}"
    return f"s:{value}"


decode = decode_text


def _encode_sql(sql: str, spec: ValueSpec) -> str:
    if spec.kind == "attr":  # already typed text (values.attr_text_sql)
        if spec.expr == m.Attribute("resource", "service.name"):
            # the column holds the string service.name (see compile._service_equality)
            return f"CASE WHEN service_name <> '' THEN 's:' || service_name ELSE {sql} END"
        return sql
    if spec.kind == "status":
        return f"('s:' || CASE {sql} WHEN 0 THEN 'unset' WHEN 1 THEN 'ok' WHEN 2 THEN 'error' END)"
    if spec.kind == "kind":
        return (f"('s:' || CASE {sql} WHEN 0 THEN 'unspecified' WHEN 1 THEN 'internal' WHEN 2 THEN 'server' "
                f"WHEN 3 THEN 'client' WHEN 4 THEN 'producer' WHEN 5 THEN 'consumer' END)")
    prefix = {"duration": "i", "num": "f", "bool": "b"}.get(spec.kind, "s")
    return f"('{prefix}:' || ({sql})::VARCHAR)"


def _number_sql(sql: str, spec: ValueSpec) -> str:
    if spec.kind == "attr":  # the number of typed text i:... or f:...
        return (f"list_transform([{sql}], lambda x: CASE WHEN x[1:2] IN ('i:', 'f:') "
                f"THEN x[3:]::DOUBLE END)[1]")
    if spec.kind == "duration":
        return f"(({sql}) / 1e9)"
    if spec.kind == "num":
        return f"(({sql})::DOUBLE)"
    raise TraceQLError(f"metrics need a number to aggregate, not {spec.label}")


def _number(value: Any, spec: ValueSpec | None) -> float | None:
    if spec is None or value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value / 1e9 if spec.kind == "duration" else float(value)


# --- rows -> series -------------------------------------------------------------------------------
def _series(rows: list[dict[str, Any]], metric: m.MetricsAggregate, start_ns: int, step_ns: int,
            buckets: int) -> list[Series]:
    out: dict[tuple[Label, ...], Series] = {}
    step_s = step_ns / 1e9
    names = [e.label() if isinstance(e, m.Attribute | m.Intrinsic) else str(e) for e in metric.by]
    for row in rows:
        labels = tuple((name, decode(row[f"g{n}"])) for n, name in enumerate(names)
                       if row[f"g{n}"] is not None)
        ts_ms = (start_ns + int(row["b"]) * step_ns) // 1_000_000
        for extra, value in _values(row, metric, step_s):
            key = labels + extra or (("__name__", metric.fn),)
            series = out.setdefault(key, Series(key))
            if value is not None and not math.isnan(value):
                series.samples[ts_ms] = value
            ex_value = row["mx"] if row["mx"] is not None else value
            if ex_value is not None:
                series.exemplars.append((bytes(row["ex_id"]).hex(), int(row["ex_ts"]) // 1_000_000,
                                         float(ex_value)))
    if metric.fn in _COUNTING:  # counts are dense: an empty bucket counted zero spans
        for series in out.values():
            for b in range(buckets):
                series.samples.setdefault((start_ns + b * step_ns) // 1_000_000, 0.0)
    return sorted(out.values(), key=lambda s: repr(s.labels))


def _values(row: dict[str, Any], metric: m.MetricsAggregate, step_s: float
            ) -> Iterator[tuple[tuple[Label, ...], float | None]]:
    fn = metric.fn
    if fn == "rate":
        yield (), row["n"] / step_s
    elif fn == "count_over_time":
        yield (), float(row["n"])
    elif fn == "histogram_over_time":
        yield (("__bucket", float(row["hb"])),), float(row["n"])
    elif fn == "quantile_over_time":
        for q, value in zip(metric.quantiles, row["qs"] or [None] * len(metric.quantiles), strict=True):
            yield (("p", q),), value
    else:
        column = {"sum_over_time": "s", "min_over_time": "mn", "max_over_time": "mx",
                  "avg_over_time": "av"}[fn]
        yield (), row[column]


def _top(series: list[Series], stage: m.TopK) -> list[Series]:
    """topk/bottomk: the series with the largest (smallest) total over the range."""
    ranked = sorted(series, key=lambda s: sum(s.samples.values()), reverse=stage.fn == "topk")
    return ranked[:stage.n]


def _trim_exemplars(series: list[Series], limit: int) -> None:
    for s in series:
        s.exemplars = sorted(s.exemplars, key=lambda e: e[1])[:max(0, limit)]


# --- compare() ------------------------------------------------------------------------------------
_COMPARE_INTRINSICS = (
    ("name", "name"),
    ("status", "CASE status_code WHEN 0 THEN 'unset' WHEN 1 THEN 'ok' WHEN 2 THEN 'error' END"),
    ("kind", "CASE kind WHEN 0 THEN 'unspecified' WHEN 1 THEN 'internal' WHEN 2 THEN 'server' "
             "WHEN 3 THEN 'client' WHEN 4 THEN 'producer' WHEN 5 THEN 'consumer' END"),
)


def compare(engine: TraceQLEngine, pipeline: m.Pipeline, metric: m.MetricsCompare, start_ns: int,
            end_ns: int, step_ns: int) -> list[Series]:
    """Tempo's ``compare()``: per attribute, the top values among the selection's spans and among
    the other spans (the baseline), as series labelled ``__meta_type`` = ``selection`` /
    ``baseline``, plus ``selection_total`` / ``baseline_total`` counts of spans with the attribute."""
    stages = pipeline.stages
    if len(stages) != 1 or not isinstance(stages[0], m.SpansetFilter):
        raise Unsupported("compare() after anything but one spanset filter")
    plan = Plan(m.Pipeline((stages[0], metric.selection)))
    if plan.compiler.uses_trace_stats:
        raise Unsupported("compare() with trace-level intrinsics")
    cond = plan.filter_sql[plan.filter_index(stages[0])]
    sel = plan.filter_sql[plan.filter_index(metric.selection)]
    params: dict[str, Any] = {**plan.compiler.params, "lo": start_ns, "hi": end_ns, "step": step_ns}
    if metric.start_ns is not None or metric.end_ns is not None:
        sel = f"({sel}) AND start_time_unix_nano BETWEEN $sel_lo AND $sel_hi"
        params.update(sel_lo=metric.start_ns or 0, sel_hi=metric.end_ns or 2**63 - 1)
    typed = "a.type AS t, a.str AS s, a.int AS i, a.double AS d, a.bool AS bo"
    parts = [f"SELECT b, sel, '{scope}.' || a.key AS k, {typed} FROM "
             f"(SELECT b, sel, unnest({column}) AS a FROM m)"
             for scope, column in (("span", "span_attributes"), ("resource", "resource_attributes"))]
    parts += [f"SELECT b, sel, '{k}' AS k, 1 AS t, {v} AS s, NULL::BIGINT, NULL::DOUBLE, NULL::BOOLEAN "
              f"FROM m" for k, v in _COMPARE_INTRINSICS]
    sql = (f"WITH m AS (SELECT (start_time_unix_nano - $lo) // $step AS b, ({sel}) AS sel, * FROM {{spans}} "
           f"WHERE start_time_unix_nano >= $lo AND start_time_unix_nano < $hi AND ({cond})) "
           f"SELECT b, sel, k, t, s, i, d, bo, count(*) AS n FROM ({' UNION ALL '.join(parts)}) "
           "GROUP BY ALL")
    table = engine.reader.run_sql(sql, used_params(params, sql), start_ns, end_ns)
    return _compare_series(table.to_pylist(), metric.top_n, start_ns, step_ns)


def _compare_series(rows: list[dict[str, Any]], top_n: int, start_ns: int, step_ns: int) -> list[Series]:
    values: dict[tuple[str, str, Any], dict[int, float]] = {}
    totals: dict[tuple[str, str], dict[int, float]] = {}
    for row in rows:
        if row["t"] not in (1, 2, 3, 4):
            continue
        value = {1: row["s"], 2: row["bo"], 3: row["i"], 4: row["d"]}[row["t"]]
        side = "selection" if row["sel"] else "baseline"
        ts = (start_ns + int(row["b"]) * step_ns) // 1_000_000
        per_bucket = values.setdefault((side, row["k"], value), {})
        per_bucket[ts] = per_bucket.get(ts, 0.0) + row["n"]
        total = totals.setdefault((side, row["k"]), {})
        total[ts] = total.get(ts, 0.0) + row["n"]
    ranked: dict[tuple[str, str], list[tuple[float, Any]]] = {}
    for (side, key, value), samples in values.items():
        ranked.setdefault((side, key), []).append((sum(samples.values()), value))
    out = []
    for (side, key), candidates in ranked.items():
        for _, value in sorted(candidates, key=lambda c: (-c[0], repr(c[1])))[:max(0, top_n)]:
            out.append(Series((("__meta_type", side), (key, value)), values[(side, key, value)]))
    for (side, key), samples in totals.items():
        out.append(Series((("__meta_type", f"{side}_total"), (key, None)), samples))
    return sorted(out, key=lambda s: repr(s.labels))
