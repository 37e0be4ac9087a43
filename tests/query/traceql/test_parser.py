"""The TraceQL parser: the model it builds, and errors that say where (line, column) or what."""

from __future__ import annotations

import pytest

from spanlake.query.traceql.parser import parse, parse_duration
from spanlake.storage.traceql import model as m
from spanlake.storage.traceql.errors import TraceQLError, Unsupported


def only_filter(text: str) -> m.FieldExpr:
    stage = parse(text).pipeline.stages[0]
    assert isinstance(stage, m.SpansetFilter)
    return stage.expr


@pytest.mark.parametrize(("text", "expected"), [
    ("{}", m.Static("bool", True)),
    ('{ span.http.method = "GET" }',
     m.BinaryOp("=", m.Attribute("span", "http.method"), m.Static("string", "GET"))),
    ("{ .foo != nil }", m.BinaryOp("!=", m.Attribute("", "foo"), m.Static("nil", None))),
    ('{ resource.service.name =~ "api.*" }',
     m.BinaryOp("=~", m.Attribute("resource", "service.name"), m.Static("string", "api.*"))),
    ("{ duration > 1.5s }", m.BinaryOp(">", m.Intrinsic("duration"), m.Static("duration", 1_500_000_000))),
    ("{ span:duration > 200ms }",
     m.BinaryOp(">", m.Intrinsic("duration"), m.Static("duration", 200_000_000))),
    ("{ traceDuration > 1h30m }",
     m.BinaryOp(">", m.Intrinsic("trace:duration"), m.Static("duration", 5_400 * 10**9))),
    ("{ status = error }", m.BinaryOp("=", m.Intrinsic("status"), m.Static("status", "error"))),
    ("{ kind = server }", m.BinaryOp("=", m.Intrinsic("kind"), m.Static("kind", "server"))),
    ("{ rootServiceName = `a\\d` }",
     m.BinaryOp("=", m.Intrinsic("trace:rootService"), m.Static("string", "a\\d"))),
    ('{ span."with space" = 1 }', m.BinaryOp("=", m.Attribute("span", "with space"), m.Static("int", 1))),
    ("{ event.attempt >= -2 }", m.BinaryOp(">=", m.Attribute("event", "attempt"), m.Static("int", -2))),
    ("{ link:traceID = \"ab\" }", m.BinaryOp("=", m.Intrinsic("link:traceID"), m.Static("string", "ab"))),
    ("{ instrumentation.x = 1.25 }",
     m.BinaryOp("=", m.Attribute("instrumentation", "x"), m.Static("float", 1.25))),
    ("{ !(.b = 1) }",
     m.UnaryOp("!", m.BinaryOp("=", m.Attribute("", "b"), m.Static("int", 1)))),
])
def test_filters_parse_into_the_model(text: str, expected: m.FieldExpr) -> None:
    assert only_filter(text) == expected


def test_precedence_inside_a_filter() -> None:
    expr = only_filter("{ .a = 1 || .b = 2 && .c + 2 * 3 > 4 }")
    assert isinstance(expr, m.BinaryOp) and expr.op == "||"
    rhs = expr.rhs
    assert isinstance(rhs, m.BinaryOp) and rhs.op == "&&"
    cmp = rhs.rhs
    assert isinstance(cmp, m.BinaryOp) and cmp.op == ">"
    product = m.BinaryOp("*", m.Static("int", 2), m.Static("int", 3))
    assert cmp.lhs == m.BinaryOp("+", m.Attribute("", "c"), product)


def test_spanset_operators_bind_tighter_than_and_than_or() -> None:
    stage = parse("{} || {} && {} >> {}").pipeline.stages[0]
    assert isinstance(stage, m.SpansetOp) and stage.op == "||"
    assert isinstance(stage.rhs, m.SpansetOp) and stage.rhs.op == "&&"
    assert isinstance(stage.rhs.rhs, m.SpansetOp) and stage.rhs.rhs.op == ">>"


@pytest.mark.parametrize("op", [">", ">>", "<", "<<", "~", "!>", "!>>", "!<", "!<<", "!~",
                                "&>", "&>>", "&<", "&<<", "&~", "&&", "||"])
def test_every_spanset_operator(op: str) -> None:
    stage = parse(f"{{ kind = server }} {op} {{ kind = client }}").pipeline.stages[0]
    assert isinstance(stage, m.SpansetOp) and stage.op == op


def test_pipeline_stages() -> None:
    q = parse("{ } | count() > 2 | avg(duration) >= 1s | by(resource.service.name) | coalesce() "
              "| select(span.a, name)")
    stages = q.pipeline.stages
    assert stages[1] == m.ScalarFilter(">", m.Aggregate("count", None), m.Static("int", 2))
    assert stages[2] == m.ScalarFilter(">=", m.Aggregate("avg", m.Intrinsic("duration")),
                                       m.Static("duration", 10**9))
    assert stages[3] == m.GroupBy((m.Attribute("resource", "service.name"),))
    assert stages[4] == m.Coalesce()
    assert stages[5] == m.Select((m.Attribute("span", "a"), m.Intrinsic("name")))


@pytest.mark.parametrize(("text", "metric"), [
    ("{} | rate()", m.MetricsAggregate("rate")),
    ("{} | count_over_time() by (name)", m.MetricsAggregate("count_over_time", by=(m.Intrinsic("name"),))),
    ("{} | max_over_time(duration)", m.MetricsAggregate("max_over_time", m.Intrinsic("duration"))),
    ("{} | quantile_over_time(duration, .5, 0.99)",
     m.MetricsAggregate("quantile_over_time", m.Intrinsic("duration"), (0.5, 0.99))),
    ("{} | histogram_over_time(duration) by (span.x)",
     m.MetricsAggregate("histogram_over_time", m.Intrinsic("duration"), by=(m.Attribute("span", "x"),))),
    ("{} | compare({status = error}, 5)",
     m.MetricsCompare(m.SpansetFilter(
         m.BinaryOp("=", m.Intrinsic("status"), m.Static("status", "error"))), 5)),
])
def test_metrics_functions(text: str, metric: m.MetricsAggregate | m.MetricsCompare) -> None:
    assert parse(text).metrics == metric


def test_with_hints_and_topk() -> None:
    q = parse("{} | rate() by (name) | topk(3) with (sample = true, most_recent=true)")
    assert q.second_stage == m.TopK("topk", 3)
    assert q.hints == {"sample": True, "most_recent": True}


@pytest.mark.parametrize(("text", "where"), [
    ("{ status = }", "line 1, col 12"),
    ("{ status = error\n  && }", "line 2, col 6"),
    ("{ span.a = 1 ", "unexpected end of query"),
    ("{ a = 1 }", "line 1, col 3"),
    ('{ name = "x" } |', "unexpected end of query"),
    ("{ name = 'x' }", "line 1, col 10"),
])
def test_syntax_errors_say_where(text: str, where: str) -> None:
    with pytest.raises(TraceQLError, match="parse error") as err:
        parse(text)
    assert where in err.value.message


@pytest.mark.parametrize(("text", "construct"), [
    ("{ parent.http.method = 1 }", "parent."),
])
def test_unsupported_constructs_are_named(text: str, construct: str) -> None:
    with pytest.raises(Unsupported) as err:
        parse(text)
    assert construct in err.value.message


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty query"),
    ("{} | rate() | count() > 1", "metrics function must be the last stage"),
    ("{} | topk(2)", "must follow a metrics function"),
    ("{} | quantile_over_time(duration, 2)", "not between 0 and 1"),
    ("{} | count() =~ 2", "not allowed"),
])
def test_invalid_queries_explain_themselves(text: str, message: str) -> None:
    with pytest.raises(TraceQLError, match=message):
        parse(text)


@pytest.mark.parametrize(("text", "ns"), [("1ns", 1), ("1.5s", 1_500_000_000), ("2m", 120 * 10**9),
                                          ("1h30m", 5400 * 10**9), ("100us", 100_000), ("3µs", 3000)])
def test_durations(text: str, ns: int) -> None:
    assert parse_duration(text) == ns


@pytest.mark.parametrize(("text", "message"), [
    ("{ " + " && ".join(['name = "a"'] * 3000) + " }", "too complex"),
    ('{ name = "' + "x" * 70_000 + '" }', "too long"),
])
def test_oversized_queries_are_refused(text: str, message: str) -> None:
    with pytest.raises(TraceQLError, match=message):
        parse(text)
