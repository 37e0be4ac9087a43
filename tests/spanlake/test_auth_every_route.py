"""With a tokens file, no route of any app and no method of any gRPC service answers without a valid
token with the right right. The routes are enumerated from the apps ``serve`` builds (FastAPI
``app.routes``) and the methods from the gRPC servers, so routes added later are checked too."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from fastapi import FastAPI
from starlette.routing import Route

from spanlake.admin import HEALTH_ROUTES
from spanlake.listeners import Listeners
from spanlake.serve import Runtime
from tests.query.client import TestClient
from tests.spanlake.auth_support import UI_USER, bearer, runtime_and_store, settings_with_auth

# The right each listener needs (the query port's /api/sql needs "sql", see test below).
LISTENER_RIGHT = {"otlp_http": "ingest", "jaeger_http": "ingest", "zipkin": "ingest", "sampling": "ingest",
                  "query": "query", "admin": "admin", "otlp_grpc": "ingest", "jaeger_grpc": "ingest"}
OTHER_RIGHT = {"ingest": "query", "query": "ingest", "sql": "query", "admin": "query"}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Runtime, Listeners]]:
    settings = settings_with_auth(tmp_path_factory.mktemp("auth"))
    runtime, store = runtime_and_store(settings)
    out = runtime.build(store)
    admin = runtime.admin_listener()
    assert admin is not None
    out.http.append(admin)
    yield runtime, out
    store.close()


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


def http_routes(app: FastAPI) -> list[tuple[str, set[str]]]:
    """(path template, methods) of every route of ``app``, included routers flattened."""
    out = []
    for route in app.routes:
        if hasattr(route, "effective_route_contexts"):  # FastAPI's included router
            out += [(ctx.path, set(ctx.methods or {"GET"})) for ctx in route.effective_route_contexts()]
        else:
            assert isinstance(route, Route), route  # a Mount would need its own enumeration
            out.append((route.path, set(route.methods or {"GET"})))
    return out


def _http_cases(out: Listeners) -> Iterator[tuple[str, TestClient, str, str, str]]:
    for listener in out.http:
        client = TestClient(listener.app, raise_server_exceptions=False)
        for template, methods in http_routes(listener.app):
            for method in sorted(methods - {"HEAD"}):
                path = _concrete(template)
                right = "sql" if path.startswith("/api/sql") else LISTENER_RIGHT[listener.name]
                if listener.name == "zipkin" and method != "POST":
                    right = "query"  # Zipkin's read API on the ingest port
                yield listener.name, client, method, path, right


def test_the_enumeration_covers_every_listener(built: tuple[Runtime, Listeners]) -> None:
    _, out = built
    assert {h.name for h in out.http} == {"otlp_http", "jaeger_http", "zipkin", "sampling", "query", "admin"}
    assert {g.name for g in out.grpc} == {"otlp_grpc", "jaeger_grpc"}
    paths = {path for _, _, _, path, _ in _http_cases(out)}
    for expected in ("/api/sql", "/api/transform", "/api/traces", "/api/v3/traces", "/metrics", "/",
                     "/static/x", "/v1/traces", "/api/v2/spans", "/zipkin/api/v2/traces",
                     # Tempo's API under /tempo (Grafana's Tempo data source), TraceQL included.
                     "/tempo", "/tempo/api/echo", "/tempo/api/v2/traces/x", "/tempo/api/traces/x",
                     "/tempo/api/search", "/tempo/api/v2/search/tags", "/tempo/api/v2/search/tag/x/values",
                     "/tempo/api/metrics/query_range", "/tempo/api/metrics/query"):
        assert expected in paths


def test_no_http_route_answers_without_a_valid_token(built: tuple[Runtime, Listeners]) -> None:
    checked = 0
    for name, client, method, path, right in _http_cases(built[1]):
        if name == "admin" and path in HEALTH_ROUTES:
            continue  # the documented exception, checked below
        where = f"{name} {method} {path}"
        missing = client.request(method, path)
        assert missing.status_code == 401, where
        assert missing.headers["www-authenticate"].startswith("Bearer"), where
        wrong = client.request(method, path, headers={"authorization": "Bearer not-a-real-token-at-all"})
        assert wrong.status_code == 401, where
        other = client.request(method, path, headers=bearer(OTHER_RIGHT[right]))
        assert other.status_code == 403, where
        allowed = client.request(method, path, headers=bearer(right))
        assert allowed.status_code not in (401, 403), where  # the check above is not vacuous
        checked += 1
    assert checked >= 30


def test_paths_no_route_knows_are_refused_before_routing(built: tuple[Runtime, Listeners]) -> None:
    for listener in built[1].http:
        client = TestClient(listener.app)
        assert client.get("/no/such/route").status_code == 401, listener.name
        assert client.post("/api/sql/../sql", content=b"SELECT 1").status_code == 401


def test_only_the_health_probes_answer_without_a_token(built: tuple[Runtime, Listeners]) -> None:
    (admin,) = [h for h in built[1].http if h.name == "admin"]
    client = TestClient(admin.app)
    for path in HEALTH_ROUTES:
        reply = client.get(path)
        assert reply.status_code in (200, 503), path
        assert set(reply.json()) <= {"status", "upSince", "uptime", "waiting_for"}  # nothing else leaks
    assert client.get("/metrics").status_code == 401


def test_the_ui_accepts_basic_auth_and_asks_browsers_for_it(built: tuple[Runtime, Listeners]) -> None:
    (query,) = [h for h in built[1].http if h.name == "query"]
    client = TestClient(query.app)
    challenge = client.get("/search")
    assert any(v.startswith('Basic realm="spanlake"') for v in challenge.headers.get_list("www-authenticate"))
    assert client.get("/search", auth=UI_USER).status_code == 200
    assert client.get("/api/services", auth=UI_USER).status_code == 200
    assert client.get("/api/services", auth=(UI_USER[0], "wrong-password-xxxxxx")).status_code == 401


def _grpc_methods(server: grpc.Server) -> list[str]:
    # grpc keeps generic handlers privately; the list must not come out empty (checked below).
    handlers = server._state.generic_handlers
    return sorted(m for h in handlers for m in getattr(h, "_method_handlers", {}))


def test_no_grpc_method_answers_without_a_valid_token(built: tuple[Runtime, Listeners]) -> None:
    from spanlake.serve import _bind

    runtime, out = built
    methods_seen = []
    for listener in out.grpc:
        _bind(listener, "127.0.0.1", runtime.security)
        listener.server.start()
        try:
            methods = _grpc_methods(listener.server)
            assert methods, listener.name
            with grpc.insecure_channel(f"127.0.0.1:{listener.port}") as channel:
                for method in [*methods, "/no.such.Service/Nothing"]:
                    call = channel.unary_unary(method)
                    refusals = [((), grpc.StatusCode.UNAUTHENTICATED),
                                (((  "authorization", "Bearer nope-nope-nope-nope"),),
                                 grpc.StatusCode.UNAUTHENTICATED),
                                (tuple(bearer("query").items()), grpc.StatusCode.PERMISSION_DENIED)]
                    for metadata, code in refusals:
                        with pytest.raises(grpc.RpcError) as info:
                            call(b"", metadata=metadata, timeout=10)
                        assert info.value.code() == code, (method, metadata)
                    if method.startswith("/no.such"):
                        continue
                    try:  # the right token gets past auth: an answer, or the handler's own error
                        call(b"", metadata=tuple(bearer("ingest").items()), timeout=10)
                    except grpc.RpcError as exc:
                        assert exc.code() not in (grpc.StatusCode.UNAUTHENTICATED,
                                                  grpc.StatusCode.PERMISSION_DENIED), method
                    methods_seen.append(method)
        finally:
            listener.server.stop(None)
    assert "/opentelemetry.proto.collector.trace.v1.TraceService/Export" in methods_seen
    assert "/jaeger.api_v2.CollectorService/PostSpans" in methods_seen
    assert "/jaeger.api_v2.SamplingManager/GetSamplingStrategy" in methods_seen


def test_an_org_id_naming_another_tenant_is_forbidden(built: tuple[Runtime, Listeners]) -> None:
    (query,) = [h for h in built[1].http if h.name == "query"]
    client = TestClient(query.app)
    headers = bearer("team-a") | {"x-scope-orgid": "team-b"}
    assert client.get("/api/services", headers=headers).status_code == 403
    same = bearer("team-a") | {"x-scope-orgid": "team-a"}
    assert client.get("/api/services", headers=same).status_code == 200


def test_refusals_are_counted_without_the_token(built: tuple[Runtime, Listeners], tmp_path: Path) -> None:
    runtime, out = built
    (query,) = [h for h in out.http if h.name == "query"]
    TestClient(query.app).get("/api/services", headers={"authorization": "Bearer secret-guess-123456"})
    text = runtime.metrics.registry.get_sample_value(
        "spanlake_refused_requests_total", {"listener": "query", "tenant": "unknown",
                                            "reason": "unauthenticated"})
    assert text and text >= 1
    from prometheus_client import generate_latest
    assert b"secret-guess" not in generate_latest(runtime.metrics.registry)


def test_udp_agent_ports_stay_closed_with_auth(tmp_path: Path) -> None:
    import dataclasses

    from tests.server import free_port

    settings = dataclasses.replace(settings_with_auth(tmp_path), jaeger_compact_port=free_port(),
                                   jaeger_binary_port=free_port())
    runtime, store = runtime_and_store(settings)
    try:
        assert runtime.build(store).udp == []  # a datagram carries no credentials
        open_settings = dataclasses.replace(settings, tokens_file=None)
        assert len(Runtime.from_settings(open_settings).build(store).udp) == 2
    finally:
        store.close()
