"""Contract tests of the Tempo API as Grafana's Tempo data source calls it (see docs/grafana.md)."""

from __future__ import annotations

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from spanlake.storage.store import SegmentStore
from tests.query.client import TestClient
from tests.query.tempo.proto_fields import unknown_fields
from tests.storage.spans import BASE_NS, tid

PB = {"Accept": "application/protobuf"}
START, END = BASE_NS // 10**9, BASE_NS // 10**9 + 3600
WINDOW = {"start": START, "end": END}


def test_echo_answers_save_and_test(client: TestClient) -> None:
    r = client.get("/tempo/api/echo")
    assert r.status_code == 200 and r.text == "echo"


def test_buildinfo_names_a_version(client: TestClient) -> None:
    assert client.get("/tempo/api/status/buildinfo").json()["version"]


def _decode_v2(body: bytes) -> tuple[TracesData, int, str]:
    """Split a TraceByIDResponse by hand: field 1 trace, 3 status, 4 message."""
    pos, trace, status, message = 0, TracesData(), 0, ""
    while pos < len(body):
        key = body[pos]
        pos += 1
        field, wire = key >> 3, key & 7
        if wire == 0:
            status, pos = body[pos], pos + 1
            continue
        length, shift = 0, 0
        while True:
            b = body[pos]
            pos += 1
            length |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                break
        chunk = body[pos:pos + length]
        pos += length
        if field == 1:
            trace = TracesData.FromString(chunk)
        elif field == 4:
            message = chunk.decode()
    return trace, status, message


def test_trace_by_id_v2_is_protobuf_with_every_span(client: TestClient, store: SegmentStore) -> None:
    r = client.get(f"/tempo/api/v2/traces/{tid(3).hex()}", headers=PB)
    assert r.status_code == 200 and r.headers["content-type"] == "application/protobuf"
    trace, status, _ = _decode_v2(r.content)
    expected = store.get_traces([tid(3)]).num_rows
    spans = [s for rs in trace.resource_spans for ss in rs.scope_spans for s in ss.spans]
    assert len(spans) == expected and status == 0
    assert {s.trace_id for s in spans} == {tid(3)}
    for rs in trace.resource_spans:  # Grafana drops a resource without attributes
        assert any(kv.key == "service.name" for kv in rs.resource.attributes)
        for ss in rs.scope_spans:
            assert ss.HasField("scope")


def test_trace_by_id_v1_is_a_bare_trace(client: TestClient) -> None:
    r = client.get(f"/tempo/api/traces/{tid(3).hex()}", headers=PB)
    assert r.status_code == 200
    spans = [s for rs in TracesData.FromString(r.content).resource_spans for ss in rs.scope_spans
             for s in ss.spans]
    assert spans and all(s.trace_id == tid(3) for s in spans)


def test_short_trace_id_is_left_padded(client: TestClient) -> None:
    r = client.get("/tempo/api/v2/traces/3", headers=PB, params=WINDOW)
    assert r.status_code == 200 and _decode_v2(r.content)[0].resource_spans


def test_unknown_trace_is_404(client: TestClient) -> None:
    assert client.get(f"/tempo/api/v2/traces/{'ab' * 16}", headers=PB).status_code == 404
    assert client.get(f"/tempo/api/traces/{'ab' * 16}").status_code == 404


def test_bad_trace_id_is_400(client: TestClient) -> None:
    r = client.get("/tempo/api/v2/traces/not-hex")
    assert r.status_code == 400 and "trace ID" in r.text


def test_trace_json_forms(client: TestClient) -> None:
    v2 = client.get(f"/tempo/api/v2/traces/{tid(3).hex()}").json()
    assert v2["trace"]["resourceSpans"]
    v1 = client.get(f"/tempo/api/traces/{tid(3).hex()}").json()
    assert v1["batches"]


def test_huge_trace_is_truncated_with_partial_status(store: SegmentStore) -> None:
    from fastapi import FastAPI

    from spanlake.query.tempo.api import router
    from spanlake.storage.traceql.engine import TraceQLEngine

    app = FastAPI()
    app.include_router(router(store, TraceQLEngine(store.reader), max_trace_spans=1))
    big = next(n for n in range(1, 41) if store.get_traces([tid(n)]).num_rows > 2)
    r = TestClient(app).get(f"/tempo/api/v2/traces/{tid(big).hex()}", headers=PB)
    trace, status, message = _decode_v2(r.content)
    assert status == 1 and "maximum of 1 spans" in message
    assert sum(len(ss.spans) for rs in trace.resource_spans for ss in rs.scope_spans) == 1


def test_search_response_decodes_strictly(client: TestClient) -> None:
    q = "{span.http.status_code >= 500} | select(span.http.method)"
    r = client.get("/tempo/api/search", params={"q": q, "limit": 5, "spss": 2, **WINDOW})
    assert r.status_code == 200, r.text
    body = r.json()
    assert unknown_fields(body, "SearchResponse") == []
    assert 0 < len(body["traces"]) <= 5
    for trace in body["traces"]:
        assert len(trace["traceID"]) == 32 and int(trace["startTimeUnixNano"]) >= BASE_NS
        assert isinstance(trace["durationMs"], int)
        assert trace["serviceStats"] and all(s["spanCount"] >= 1 for s in trace["serviceStats"].values())
        for spanset in trace["spanSets"]:
            assert 1 <= len(spanset["spans"]) <= 2 and spanset["matched"] >= len(spanset["spans"])
            for span in spanset["spans"]:
                codes = [a["value"]["intValue"] for a in span["attributes"] if a["key"] == "http.status_code"]
                assert codes and int(codes[0]) >= 500


def test_search_is_newest_first_and_limited(client: TestClient) -> None:
    traces = client.get("/tempo/api/search", params={"q": "{}", "limit": 7}).json()["traces"]
    starts = [int(t["startTimeUnixNano"]) for t in traces]
    assert len(traces) == 7 and starts == sorted(starts, reverse=True)
    assert traces[0]["traceID"] == tid(40).hex()


def test_search_syntax_error_is_400_with_line_and_column(client: TestClient) -> None:
    r = client.get("/tempo/api/search", params={"q": "{ status = error\n && }"})
    assert r.status_code == 400 and "line 2, col 5" in r.text


def test_unsupported_construct_is_400_naming_it(client: TestClient) -> None:
    r = client.get("/tempo/api/search", params={"q": "{ parent.x = 1 }"})
    assert r.status_code == 400 and "parent." in r.text


def test_legacy_search_tags_and_durations(client: TestClient) -> None:
    params = {"tags": 'service.name=db http.status_code=500', "minDuration": "100ms", **WINDOW}
    legacy = client.get("/tempo/api/search", params=params).json()["traces"]
    q = '{ .service.name = "db" && .http.status_code = 500 && duration >= 100ms }'
    traceql = client.get("/tempo/api/search", params={"q": q, **WINDOW}).json()["traces"]
    assert legacy and [t["traceID"] for t in legacy] == [t["traceID"] for t in traceql]


def test_tags_v2_lists_every_scope(client: TestClient) -> None:
    scopes = {s["name"]: s["tags"] for s in client.get("/tempo/api/v2/search/tags").json()["scopes"]}
    assert {"resource", "span", "event", "link", "instrumentation", "intrinsic"} <= set(scopes)
    assert "service.name" in scopes["resource"] and "http.status_code" in scopes["span"]
    assert "exception.type" in scopes["event"] and "link.kind" in scopes["link"]
    assert "status" in scopes["intrinsic"]
    only = client.get("/tempo/api/v2/search/tags", params={"scope": "span"}).json()["scopes"]
    assert [s["name"] for s in only] == ["span"]


def test_tag_values_are_typed(client: TestClient) -> None:
    def values(tag: str, **params: str) -> list[dict[str, str]]:
        r = client.get(f"/tempo/api/v2/search/tag/{tag}/values", params=params)
        assert r.status_code == 200, r.text
        return r.json()["tagValues"]

    assert {"type": "string", "value": "frontend"} in values("resource.service.name")
    assert {"type": "int", "value": "500"} in values("span.http.status_code")
    assert {"type": "float", "value": "0.25"} in values("span.ratio")
    assert {"type": "bool", "value": "true"} in values("span.cache.hit")
    assert {"type": "keyword", "value": "error"} in values("status")
    assert {"type": "keyword", "value": "server"} in values("kind")
    assert values("name")[0]["type"] == "string"


def test_tag_values_q_keeps_co_occurring_values(client: TestClient) -> None:
    url = "/tempo/api/v2/search/tag/resource.service.name/values"
    only_db = client.get(url, params={"q": '{resource.db.system = "postgresql"}'}).json()["tagValues"]
    assert only_db == [{"type": "string", "value": "db"}]
    broken = client.get(url, params={"q": '{resource.db.system = }'}).json()["tagValues"]
    assert len(broken) == 4  # a query that does not parse is ignored


def test_v1_tag_routes(client: TestClient) -> None:
    names = client.get("/tempo/api/search/tags").json()["tagNames"]
    assert "service.name" in names and "http.method" in names
    values = client.get("/tempo/api/search/tag/service.name/values").json()["tagValues"]
    assert sorted(values) == ["api", "cache", "db", "frontend"]


def test_metrics_query_range_counts_every_span(client: TestClient, store: SegmentStore) -> None:
    params = {"q": "{} | count_over_time() by (resource.service.name)", "start": START, "end": END,
              "step": "60s"}
    body = client.get("/tempo/api/metrics/query_range", params=params).json()
    assert unknown_fields(body, "QueryRangeResponse") == []
    total = sum(s["value"] for series in body["series"] for s in series["samples"])
    assert total == store.snapshot().tail.num_rows + sum(seg.num_spans for seg in store.snapshot().segments)
    labels = {series["labels"][0]["value"]["stringValue"] for series in body["series"]}
    assert labels == {"frontend", "api", "db", "cache"}
    exemplar = body["series"][0]["exemplars"][0]
    assert exemplar["labels"][0]["key"] == "trace:id"
    assert len(exemplar["labels"][0]["value"]["stringValue"]) == 32


def test_metrics_histogram_labels_buckets(client: TestClient) -> None:
    params = {"q": "{} | histogram_over_time(duration)", "start": START, "end": END, "step": "10m"}
    series = client.get("/tempo/api/metrics/query_range", params=params).json()["series"]
    buckets = {s["labels"][0]["value"]["doubleValue"] for s in series}
    assert all(s["labels"][0]["key"] == "__bucket" for s in series)
    assert {0.001953125, 2.0, 4.0} <= buckets


def test_metrics_instant_decodes_strictly(client: TestClient) -> None:
    params = {"q": "{status = error} | rate()", "start": START, "end": END}
    body = client.get("/tempo/api/metrics/query", params=params).json()
    assert unknown_fields(body, "QueryInstantResponse") == []
    assert len(body["series"]) == 1 and body["series"][0]["value"] > 0


def test_metrics_errors_are_400(client: TestClient) -> None:
    assert client.get("/tempo/api/metrics/query_range", params={"q": "{}"}).status_code == 400
    r = client.get("/tempo/api/metrics/query_range", params={"q": "{} | rate(", **WINDOW})
    assert r.status_code == 400 and "line 1" in r.text
    r = client.get("/tempo/api/metrics/query_range", params={"q": "{} | rate()", "step": "0s", **WINDOW})
    assert r.status_code == 400


def test_the_data_source_url_itself_answers(client: TestClient) -> None:
    assert client.get("/tempo").status_code == 200


@pytest.mark.parametrize(("q", "message"), [
    ('{ duration = "slow" }', "cannot compare"),
    ("{ nestedSetLeft > 3 }", "nestedSetLeft"),
    ("{ span.a = span.b }", "two attributes"),
    ("{ status < error }", "only be compared with = or !="),
    ('{ name =~ 5 }', "regular expression"),
])
def test_query_errors_are_400_with_the_reason(client: TestClient, q: str, message: str) -> None:
    r = client.get("/tempo/api/search", params={"q": q})
    assert r.status_code == 400 and message in r.text


@pytest.mark.parametrize(("params", "message"), [
    ({"q": "{}", "limit": "x"}, "invalid limit"),
    ({"q": "{}", "start": "yesterday", "end": "1"}, "invalid start"),
    ({"q": "{}", "start": "100", "end": "50"}, "end is before start"),
    ({"tags": "status=broken"}, "invalid status"),
    ({"minDuration": "fast"}, "invalid duration"),
])
def test_bad_parameters_are_400(client: TestClient, params: dict[str, str], message: str) -> None:
    r = client.get("/tempo/api/search", params=params)
    assert r.status_code == 400 and message in r.text


def test_metrics_query_is_refused_by_search(client: TestClient) -> None:
    r = client.get("/tempo/api/search", params={"q": "{} | rate()"})
    assert r.status_code == 400 and "query_range" in r.text


def test_capped_metrics_are_partial(store: SegmentStore) -> None:
    from fastapi import FastAPI

    from spanlake.query.tempo.api import router
    from spanlake.storage.traceql.engine import TraceQLEngine

    app = FastAPI()
    app.include_router(router(store, TraceQLEngine(store.reader, max_inspected_traces=3)))
    params = {"q": "{} >> {} | count_over_time()", "start": START, "end": END, "step": "60s"}
    body = TestClient(app).get("/tempo/api/metrics/query_range", params=params).json()
    assert body["status"] == "PARTIAL" and "3 most recent" in body["message"]
    assert unknown_fields(body, "QueryRangeResponse") == []


@pytest.mark.parametrize("q", [
    "{ " + " && ".join(['name = "a"'] * 2000) + " }",
    "{ " + " && ".join(['name = "a"'] * 600) + " }",
    "{ " + "(" * 3000 + 'name = "a"' + ")" * 3000 + " }",
])
def test_huge_or_deep_queries_are_400_not_500(client: TestClient, q: str) -> None:
    r = client.get("/tempo/api/search", params={"q": q})
    assert r.status_code in (200, 400), r.text
    if r.status_code == 400:
        assert "too" in r.text


def test_duration_values_are_go_durations(client: TestClient, store: SegmentStore) -> None:
    from spanlake.query.traceql.parser import parse_duration

    values = client.get("/tempo/api/v2/search/tag/duration/values").json()["tagValues"]
    durations = {int(d) for d in store.snapshot().tail.column("duration_nano").to_pylist()}
    assert values and all(v["type"] == "duration" for v in values)
    assert durations & {parse_duration(v["value"]) for v in values}


def test_event_and_trace_level_tag_values(client: TestClient) -> None:
    events = client.get("/tempo/api/v2/search/tag/event:name/values").json()["tagValues"]
    assert {v["value"] for v in events} == {"exception", "retry"}
    names = client.get("/tempo/api/v2/search/tag/name/values",
                       params={"q": '{ trace:rootService = "frontend" && span:parentID = nil }'})
    assert names.status_code == 200 and names.json()["tagValues"]
    roots = client.get("/tempo/api/v2/search/tag/trace:rootService/values").json()["tagValues"]
    assert {v["value"] for v in roots} <= {"frontend", "api"}


TOKENS = ["{", "}", "(", ")", "&&", "||", "!", ">", ">>", "<", "<<", "~", "!~", "&>>", "=", "!=", "=~",
          ">=", "|", "count()", "avg(duration)", "by(name)", "select(span.a)", "coalesce()", "rate()",
          "quantile_over_time(duration, .9)", "name", "status", "error", "kind", "server", "duration",
          "1s", "500", "-2", "0.5", '"x"', "`y`", "nil", "true", "span.a", "resource.service.name", ".b",
          "event:name", "trace:duration", "nestedSetParent", "+", "*", "/", "%", "^", ",", "with(x=1)"]


def test_random_token_soup_never_makes_a_500(client: TestClient) -> None:
    import random

    rng = random.Random(5)
    statuses = set()
    for _ in range(300):
        q = " ".join(rng.choice(TOKENS) for _ in range(rng.randint(1, 12)))
        if rng.random() < 0.5:
            q = "{ " + q + " }"
        for path in ("/tempo/api/search", "/tempo/api/metrics/query_range",
                     "/tempo/api/v2/search/tag/name/values"):
            r = client.get(path, params={"q": q, **WINDOW})
            assert r.status_code in (200, 400), (path, q, r.text)
            statuses.add(r.status_code)
    assert statuses == {200, 400}
