"""TLS on every TCP listener, and mTLS, with real clients: the OpenTelemetry SDK's OTLP exporters
(gRPC and HTTP, with a CA file and an auth header) and httpx with a client certificate."""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import grpc
import httpx
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.trace.export import SpanExportResult

from tests.e2e.support import eventually
from tests.e2e.test_real_clients import emit
from tests.server import SpanlakeProcess
from tests.spanlake.auth_support import bearer, write_tokens
from tests.spanlake.certs import Certs, make_certs

TCP_HTTP = ("otlp_http", "jaeger_http", "zipkin", "sampling", "query", "admin")


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory, certs: Certs) -> Iterator[SpanlakeProcess]:
    tmp = tmp_path_factory.mktemp("tls")
    args = ["--tls-cert", str(certs.server_cert), "--tls-key", str(certs.server_key),
            "--tokens-file", str(write_tokens(tmp))]
    proc = SpanlakeProcess(tmp / "data", extra_args=args, scheme="https").start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def mtls_server(tmp_path_factory: pytest.TempPathFactory, certs: Certs) -> Iterator[SpanlakeProcess]:
    tmp = tmp_path_factory.mktemp("mtls")
    args = ["--tls-cert", str(certs.server_cert), "--tls-key", str(certs.server_key),
            "--tls-client-ca", str(certs.ca)]
    proc = SpanlakeProcess(tmp / "data", extra_args=args, scheme="https").start()
    yield proc
    proc.stop()


def _services(server: SpanlakeProcess, **client: object) -> list[str]:
    reply = httpx.get(f"{server.query_url}/api/services", timeout=10, **client)  # type: ignore[arg-type]
    assert reply.status_code == 200, reply.text
    names: list[str] = reply.json()["data"]
    return names


def test_otlp_exporters_send_over_tls_with_a_ca_file_and_a_token(tls_server: SpanlakeProcess,
                                                                  certs: Certs,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # requests lets these variables override a session's own CA file (psf/requests#3829), and the
    # HTTP exporter sets its certificate_file on the session: keep the machine's bundle out of it.
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    token = bearer("team-a")["authorization"]
    ca = certs.ca.read_bytes()
    grpc_exporter = GrpcExporter(endpoint=f"https://127.0.0.1:{tls_server.ports['otlp_grpc']}",
                                 credentials=grpc.ssl_channel_credentials(root_certificates=ca),
                                 headers=(("authorization", token),), timeout=10)
    emit(grpc_exporter, "tls-grpc")
    http_exporter = HttpExporter(endpoint=f"{tls_server.url('otlp_http')}/v1/traces",
                                 certificate_file=str(certs.ca), headers={"authorization": token}, timeout=10)
    emit(http_exporter, "tls-http")
    names = eventually(lambda: _check({"tls-grpc", "tls-http"},
                                      _services(tls_server, verify=str(certs.ca), headers=bearer("team-a"))))
    assert names >= {"tls-grpc", "tls-http"}


def _check(expected: set[str], names: list[str]) -> set[str]:
    assert expected <= set(names)
    return set(names)


def test_a_token_is_still_required_over_tls(tls_server: SpanlakeProcess, certs: Certs) -> None:
    exporter = GrpcExporter(endpoint=f"https://127.0.0.1:{tls_server.ports['otlp_grpc']}",
                            credentials=grpc.ssl_channel_credentials(root_certificates=certs.ca.read_bytes()),
                            timeout=5)
    with pytest.raises(AssertionError):  # emit asserts SUCCESS; UNAUTHENTICATED is not retried
        emit(exporter, "no-token")


def test_every_http_listener_speaks_tls_only(tls_server: SpanlakeProcess, certs: Certs) -> None:
    for name in TCP_HTTP:
        base = tls_server.url(name)
        reply = httpx.get(f"{base}/health/live" if name == "admin" else base + "/", verify=str(certs.ca))
        assert reply.status_code in (200, 401, 404, 405), name  # a TLS handshake and an HTTP answer
        with pytest.raises(httpx.HTTPError):  # plain HTTP to a TLS port gets no HTTP answer
            httpx.get(base.replace("https://", "http://") + "/", timeout=5)
        with pytest.raises(httpx.ConnectError):  # a CA that did not sign the server's certificate
            httpx.get(base + "/", verify=str(certs.other_ca), timeout=5)


@pytest.mark.parametrize("listener", ["otlp_grpc", "jaeger_grpc"])
def test_every_grpc_listener_speaks_tls_only(tls_server: SpanlakeProcess, certs: Certs,
                                             listener: str) -> None:
    target = f"127.0.0.1:{tls_server.ports[listener]}"
    method = "/jaeger.api_v2.SamplingManager/GetSamplingStrategy" if listener == "jaeger_grpc" else \
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
    with grpc.insecure_channel(target) as plain:
        with pytest.raises(grpc.RpcError) as refused:
            plain.unary_unary(method)(b"", timeout=5)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE  # no TLS handshake, no call
    credentials = grpc.ssl_channel_credentials(root_certificates=certs.ca.read_bytes())
    with grpc.secure_channel(target, credentials) as secure:
        with pytest.raises(grpc.RpcError) as unauthenticated:
            secure.unary_unary(method)(b"", timeout=5)
        assert unauthenticated.value.code() == grpc.StatusCode.UNAUTHENTICATED  # TLS worked; auth next
        secure.unary_unary(method)(b"", timeout=5, metadata=tuple(bearer("team-a").items()))


def test_mtls_admits_a_client_certificate_signed_by_the_ca(mtls_server: SpanlakeProcess,
                                                           certs: Certs) -> None:
    context = ssl.create_default_context(cafile=str(certs.ca))
    context.load_cert_chain(str(certs.client_cert), str(certs.client_key))
    assert _services(mtls_server, verify=context) == []
    without = ssl.create_default_context(cafile=str(certs.ca))
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{mtls_server.query_url}/api/services", verify=without, timeout=5)


def test_mtls_grpc_exporter_needs_its_client_certificate(mtls_server: SpanlakeProcess, certs: Certs) -> None:
    endpoint = f"https://127.0.0.1:{mtls_server.ports['otlp_grpc']}"
    ca = certs.ca.read_bytes()
    with_cert = grpc.ssl_channel_credentials(root_certificates=ca, private_key=certs.client_key.read_bytes(),
                                             certificate_chain=certs.client_cert.read_bytes())
    emit(GrpcExporter(endpoint=endpoint, credentials=with_cert, timeout=10), "mtls-grpc")
    without = GrpcExporter(endpoint=endpoint, credentials=grpc.ssl_channel_credentials(root_certificates=ca),
                           timeout=3)
    result = _export_one(without)
    assert result == SpanExportResult.FAILURE


def _export_one(exporter: GrpcExporter) -> SpanExportResult:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with provider.get_tracer("t").start_as_current_span("x"):
        pass
    provider.shutdown()
    result = exporter.export(memory.get_finished_spans())
    exporter.shutdown()
    return result
