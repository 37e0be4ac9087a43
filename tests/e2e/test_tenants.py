"""Two tenants send the same trace ID to a real ``spanlake serve``; each sees only its own spans
through every read API: Jaeger v1 and v3, SPM, dependencies, SQL, the UI's data calls, Tempo's API
(trace by ID, TraceQL search, tag values, TraceQL metrics) and Zipkin's (including a bare-word
``annotationQuery``, which the TraceQL engine runs like every search).

Run twice: with a tokens file (the tenant comes from the token) and without (from X-Scope-OrgID)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tests.e2e.support import eventually
from tests.server import SpanlakeProcess
from tests.spanlake.auth_support import TOKENS, UI_USER, write_tokens

TRACE_ID = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")
NOW_NS = time.time_ns() - 5 * 10**9
TENANTS = {"team-a": "a", "team-b": "b"}


def two_service_trace(suffix: str) -> ExportTraceServiceRequest:
    """frontend-<suffix> (server) calls backend-<suffix>, under the shared trace ID."""
    req = ExportTraceServiceRequest()
    root = os.urandom(8)
    for service, parent in ((f"frontend-{suffix}", None), (f"backend-{suffix}", root)):
        rs = req.resource_spans.add()
        rs.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value=service)))
        span = rs.scope_spans.add().spans.add(
            trace_id=TRACE_ID, span_id=root if parent is None else os.urandom(8), name=f"op-{suffix}",
            kind=Span.SPAN_KIND_SERVER, start_time_unix_nano=NOW_NS, end_time_unix_nano=NOW_NS + 10**6)
        if parent is not None:
            span.parent_span_id = parent
    return req


@pytest.fixture(scope="module", params=["tokens", "org-id"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[SpanlakeProcess, str]]:
    tmp = tmp_path_factory.mktemp("tenants")
    args = ["--tokens-file", str(write_tokens(tmp))] if request.param == "tokens" else []
    proc = SpanlakeProcess(tmp / "data", extra_args=args).start()
    yield proc, request.param
    proc.stop()


def headers(mode: str, tenant: str) -> dict[str, str]:
    if mode == "tokens":
        return {"authorization": f"Bearer {TOKENS[tenant]}"}
    return {"x-scope-orgid": tenant}


def send(server: SpanlakeProcess, mode: str) -> None:
    for tenant, suffix in TENANTS.items():
        reply = httpx.post(f"{server.url('otlp_http')}/v1/traces",
                           content=two_service_trace(suffix).SerializeToString(),
                           headers={"content-type": "application/x-protobuf", **headers(mode, tenant)})
        assert reply.status_code == 200, reply.text


def api(server: SpanlakeProcess, mode: str, tenant: str, path: str, **params: Any) -> Any:
    reply = httpx.get(f"{server.query_url}{path}", params=params, headers=headers(mode, tenant), timeout=30)
    assert reply.status_code == 200, (path, reply.text)
    return reply.json()


def views(server: SpanlakeProcess, mode: str, tenant: str) -> dict[str, set[str]]:
    """The services ``tenant`` sees through each read API."""
    suffix = TENANTS[tenant]
    tid = TRACE_ID.hex()
    start_us, end_us = (NOW_NS - 3600 * 10**9) // 1000, (NOW_NS + 3600 * 10**9) // 1000
    out: dict[str, set[str]] = {}
    (trace,) = api(server, mode, tenant, f"/api/traces/{tid}")["data"]
    out["v1 trace"] = {p["serviceName"] for p in trace["processes"].values()}
    found = api(server, mode, tenant, "/api/traces", service=f"frontend-{suffix}", start=start_us, end=end_us)
    out["v1 search"] = {p["serviceName"] for t in found["data"] for p in t["processes"].values()}
    other = "b" if suffix == "a" else "a"
    assert api(server, mode, tenant, "/api/traces", service=f"frontend-{other}", start=start_us,
               end=end_us)["data"] == []
    out["v1 services"] = set(api(server, mode, tenant, "/api/services")["data"])
    out["v1 operations"] = {o["name"] for o in api(server, mode, tenant, "/api/operations",
                                                    service=f"frontend-{suffix}")["data"]}
    assert api(server, mode, tenant, "/api/operations", service=f"frontend-{other}")["data"] == []
    deps = api(server, mode, tenant, "/api/dependencies", endTs=(NOW_NS // 10**6) + 60_000,
               lookback=3_600_000)["data"]
    out["dependencies"] = {d["parent"] for d in deps} | {d["child"] for d in deps}
    v3 = api(server, mode, tenant, f"/api/v3/traces/{tid}")["result"]["resourceSpans"]
    out["v3 trace"] = {a["value"]["stringValue"] for rs in v3 for a in rs["resource"]["attributes"]
                       if a["key"] == "service.name"}
    out["v3 services"] = set(api(server, mode, tenant, "/api/v3/services")["services"])
    window = {"query.start_time_min": _rfc3339(NOW_NS - 3600 * 10**9),
              "query.start_time_max": _rfc3339(NOW_NS + 3600 * 10**9)}
    v3s = api(server, mode, tenant, "/api/v3/traces", **window)["result"]["resourceSpans"]
    out["v3 search"] = {a["value"]["stringValue"] for rs in v3s for a in rs["resource"]["attributes"]
                        if a["key"] == "service.name"}
    calls = api(server, mode, tenant, "/api/metrics/calls", service=[f"frontend-{s}" for s in "ab"],
                endTs=(NOW_NS // 10**6) + 60_000, lookback=600_000, step=60_000, ratePer=600_000)
    out["spm"] = {label["value"] for m in calls["metrics"] for label in m["labels"]
                  if label["name"] == "service_name" and any(p["gaugeValue"]["doubleValue"] > 0
                                                            for p in m["metricPoints"])}
    sql = httpx.post(f"{server.query_url}/api/sql", json={"query": "SELECT DISTINCT service_name FROM spans"},
                     headers=headers(mode, tenant), timeout=30)
    assert sql.status_code == 200, sql.text
    out["sql"] = {row[0] for row in sql.json()["rows"]}
    out.update(tempo_views(server, mode, tenant))
    out.update(zipkin_views(server, mode, tenant))
    return out


def tempo_views(server: SpanlakeProcess, mode: str, tenant: str) -> dict[str, set[str]]:
    """What ``tenant`` sees through Tempo's API under /tempo (as Grafana's Tempo data source calls it)."""
    suffix, other = TENANTS[tenant], "b" if TENANTS[tenant] == "a" else "a"
    window = {"start": NOW_NS // 10**9 - 3600, "end": NOW_NS // 10**9 + 3600}
    out: dict[str, set[str]] = {}
    trace = api(server, mode, tenant, f"/tempo/api/v2/traces/{TRACE_ID.hex()}")["trace"]
    out["tempo trace"] = {a["value"]["stringValue"] for rs in trace["resourceSpans"]
                          for a in rs["resource"]["attributes"] if a["key"] == "service.name"}
    found = api(server, mode, tenant, "/tempo/api/search", q="{}", **window)["traces"]
    out["tempo search"] = {svc for t in found for svc in t["serviceStats"]}
    assert api(server, mode, tenant, "/tempo/api/search",
               q=f'{{resource.service.name = "frontend-{other}"}}', **window)["traces"] == []
    structural = api(server, mode, tenant, "/tempo/api/search",
                     q=f'{{resource.service.name = "frontend-{suffix}"}} > {{kind = server}}', **window)
    out["tempo structural"] = {svc for t in structural["traces"] for svc in t["serviceStats"]}
    values = api(server, mode, tenant, "/tempo/api/v2/search/tag/resource.service.name/values", **window)
    out["tempo tag values"] = {v["value"] for v in values["tagValues"]}
    rates = api(server, mode, tenant, "/tempo/api/metrics/query_range",
                q="{} | rate() by (resource.service.name)", step="60s", **window)
    out["tempo metrics"] = {label["value"]["stringValue"] for s in rates["series"] for label in s["labels"]
                            if label["key"] == "resource.service.name"}
    return out


def zipkin_views(server: SpanlakeProcess, mode: str, tenant: str) -> dict[str, set[str]]:
    """What ``tenant`` sees through Zipkin's read API (under /zipkin on the query port)."""
    suffix = TENANTS[tenant]
    window = {"endTs": NOW_NS // 10**6 + 60_000, "lookback": 3_600_000}
    out: dict[str, set[str]] = {}
    trace = api(server, mode, tenant, f"/zipkin/api/v2/trace/{TRACE_ID.hex()}")
    out["zipkin trace"] = {s["localEndpoint"]["serviceName"] for s in trace}
    out["zipkin services"] = set(api(server, mode, tenant, "/zipkin/api/v2/services"))
    found = api(server, mode, tenant, "/zipkin/api/v2/traces", serviceName=f"frontend-{suffix}", **window)
    out["zipkin search"] = {s["localEndpoint"]["serviceName"] for t in found for s in t}
    # A bare word: spans with an annotation so named or a tag with that key (here every span's).
    marked = api(server, mode, tenant, "/zipkin/api/v2/traces", annotationQuery="service.name", **window)
    out["zipkin annotationQuery"] = {s["localEndpoint"]["serviceName"] for t in marked for s in t}
    return out


def _rfc3339(ns: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + "Z"


def test_each_tenant_sees_only_its_own_trace_through_every_api(server: tuple[SpanlakeProcess, str]) -> None:
    proc, mode = server
    send(proc, mode)
    for tenant, suffix in TENANTS.items():
        mine = {f"frontend-{suffix}", f"backend-{suffix}"}
        seen = eventually(lambda t=tenant: views(proc, mode, t))
        for name, services in seen.items():
            expected = {"spm": {f"frontend-{suffix}"}, "v1 operations": {f"op-{suffix}"}}.get(name, mine)
            assert services == expected, (tenant, name, services)


def test_segments_are_stored_under_each_tenant_prefix(server: tuple[SpanlakeProcess, str]) -> None:
    proc, mode = server
    send(proc, mode)
    assert proc.stop() == 0  # a graceful stop flushes every tenant's tail
    tops = {p.relative_to(proc.data_dir / "spans").parts[0] for p in proc.data_dir.glob("spans/**/*.parquet")}
    assert tops == {"tenant=team-a", "tenant=team-b"}
    proc.start()


def test_sql_cannot_open_another_tenants_segments(server: tuple[SpanlakeProcess, str]) -> None:
    proc, mode = server
    send(proc, mode)
    assert proc.stop() == 0  # flushed: both tenants have segment files now
    proc.start()
    theirs = sorted(proc.data_dir.glob("spans/tenant=team-b/**/*.parquet"))
    mine = sorted(proc.data_dir.glob("spans/tenant=team-a/**/*.parquet"))
    assert theirs and mine

    def sql(query: str) -> httpx.Response:
        return httpx.post(f"{proc.query_url}/api/sql", json={"query": query},
                          headers=headers(mode, "team-a"), timeout=30)

    own = sql(f"SELECT DISTINCT service_name FROM read_parquet('{mine[0]}')")
    assert own.status_code == 200 and {r[0] for r in own.json()["rows"]} <= {"frontend-a", "backend-a"}
    for attack in (f"SELECT * FROM read_parquet('{theirs[0]}')",
                   f"SELECT * FROM parquet_metadata('{theirs[0]}')",
                   f"SELECT * FROM glob('{theirs[0].parent}/*')",
                   f"SELECT * FROM read_parquet('{proc.data_dir}/spans/*/*/*/*.parquet')",
                   f"SELECT * FROM read_parquet('{mine[0]}/../../../tenant=team-b/**/*.parquet')"):
        reply = sql(attack)
        assert reply.status_code == 400, (attack, reply.text)
        assert "file system operations are disabled by configuration" in reply.json()["error"], attack
    allowed = sql("SELECT unnest(current_setting('allowed_paths'))").json()["rows"]
    assert allowed and all("/tenant=team-a/" in row[0] for row in allowed)


def test_a_tenant_with_no_data_sees_nothing(server: tuple[SpanlakeProcess, str]) -> None:
    proc, mode = server
    if mode == "tokens":
        return  # every token of the tokens file belongs to team-a or team-b
    assert api(proc, mode, "team-c", "/api/services")["data"] == []
    assert httpx.get(f"{proc.query_url}/api/traces/{TRACE_ID.hex()}",
                     headers=headers(mode, "team-c")).status_code == 404


def test_the_ui_user_sees_its_tenant_only(server: tuple[SpanlakeProcess, str], tmp_path: Path) -> None:
    proc, mode = server
    if mode != "tokens":
        return  # basic auth needs the tokens file
    send(proc, mode)
    reply = httpx.get(f"{proc.query_url}/api/services", auth=UI_USER)
    assert reply.status_code == 200
    assert set(reply.json()["data"]) == {"frontend-a", "backend-a"}
