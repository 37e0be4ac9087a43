"""Bad input on every ingest port of a running ``spanlake serve``: the documented error in the
protocol's own terms, nothing stored (no WAL bytes, no segments), and every listener still serving.

The cases run in file order against one server: all the bad ones first (each checks the store is
still empty), then one valid request per port, read back through the query API.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import grpc
import httpx
import pytest
from google.rpc import status_pb2

from spanlake.collector.formats.proto import collector_pb2_grpc
from tests.e2e import valid_payloads as valid
from tests.e2e.otlp_build import send_grpc, send_http
from tests.e2e.support import eventually, service_of, stored_bytes, v1_trace
from tests.server import SpanlakeProcess

THRIFT, PROTO, JSON = "application/x-thrift", "application/x-protobuf", "application/json"
POST_SPANS = "/jaeger.api_v2.CollectorService/PostSpans"
EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SpanlakeProcess]:
    # No flush for an hour: anything accepted would sit in the WAL, where stored_bytes sees it.
    proc = SpanlakeProcess(tmp_path_factory.mktemp("bad-input") / "data",
                           extra_args=["--flush-interval", "3600"])
    yield proc.start()
    proc.stop()


def assert_nothing_stored(server: SpanlakeProcess) -> None:
    assert stored_bytes(server.data_dir) == 0
    assert server.alive()


HTTP_CASES = [
    # (port, path, content type, body, status, words in the message)
    ("jaeger_http", "/api/traces", THRIFT, b"\xff\xfe garbage \x00\x01", 400,
     "Unable to process request body"),
    ("jaeger_http", "/api/traces", "application/vnd.apache.thrift.binary",
     valid.jaeger_http_body(1, "x")[:-6], 400, "Unable to process request body"),
    ("jaeger_http", "/api/traces", JSON, b'{"process": {"serviceName": "a"}, "spans": [', 400,
     "Unsupported content type: application/json"),
    ("jaeger_http", "/api/traces", "text/plain", valid.jaeger_http_body(1, "x"), 400,
     "Unsupported content type"),
    ("zipkin", "/api/v2/spans", JSON, b'[{"traceId": "1", "id": ', 400, "cannot decode spans"),
    ("zipkin", "/api/v2/spans", JSON, b'{"traceId": "1", "id": "2"}', 400, "cannot decode spans"),
    ("zipkin", "/api/v2/spans", PROTO, b"\xff\xff\xff\xff\x0f", 400, "cannot decode spans"),
    ("zipkin", "/api/v2/spans", PROTO, valid.zipkin_v2_proto(1, "x")[:-3], 400, "cannot decode spans"),
    ("zipkin", "/api/v2/spans", THRIFT, valid.zipkin_v1_thrift(1, "x"), 415, "unsupported content type"),
    ("zipkin", "/api/v1/spans", JSON, b'[{"traceId": "1", "id": ', 400, "cannot decode spans"),
    ("zipkin", "/api/v1/spans", THRIFT, valid.zipkin_v1_thrift(1, "x")[:-5], 400, "cannot decode spans"),
    ("zipkin", "/api/v1/spans", THRIFT, b"\xff garbage", 400, "cannot decode spans"),
    ("zipkin", "/api/v1/spans", PROTO, valid.zipkin_v2_proto(1, "x"), 415, "unsupported content type"),
    ("otlp_http", "/v1/traces", PROTO, b"\xff\xff\xff\xff", 400, "protobuf"),
    ("otlp_http", "/v1/traces", PROTO, valid.otlp_request(1, "x").SerializeToString()[:-7], 400, "protobuf"),
    ("otlp_http", "/v1/traces", JSON, b'{"resourceSpans": [', 400, "JSON"),
    ("otlp_http", "/v1/traces", "text/plain", valid.otlp_request(1, "x").SerializeToString(), 415,
     "Content-Type"),
]
HTTP_IDS = ["jaeger-garbage", "jaeger-truncated-thrift", "jaeger-json", "jaeger-wrong-content-type",
            "zipkin-v2-invalid-json", "zipkin-v2-wrong-json-shape", "zipkin-v2-garbage-protobuf",
            "zipkin-v2-truncated-protobuf", "zipkin-v2-wrong-content-type", "zipkin-v1-invalid-json",
            "zipkin-v1-truncated-thrift", "zipkin-v1-garbage-thrift", "zipkin-v1-wrong-content-type",
            "otlp-garbage-protobuf", "otlp-truncated-protobuf", "otlp-invalid-json",
            "otlp-wrong-content-type"]


def _message(reply: httpx.Response) -> str:
    media = reply.headers.get("content-type", "")
    if media.startswith(PROTO):  # OTLP answers a protobuf request with a google.rpc.Status
        return str(status_pb2.Status.FromString(reply.content).message)
    if media.startswith(JSON):
        return str(reply.json()["message"])
    return reply.text


@pytest.mark.parametrize(("port", "path", "content_type", "body", "status", "words"), HTTP_CASES,
                         ids=HTTP_IDS)
def test_bad_http_body_is_refused(server: SpanlakeProcess, port: str, path: str, content_type: str,
                                  body: bytes, status: int, words: str) -> None:
    reply = httpx.post(server.url(port) + path, content=body, headers={"Content-Type": content_type},
                       timeout=10)
    assert reply.status_code == status, reply.text
    assert words.lower() in _message(reply).lower()
    assert_nothing_stored(server)


def test_zipkin_body_that_is_not_gzip_is_refused(server: SpanlakeProcess) -> None:
    reply = httpx.post(server.url("zipkin") + "/api/v2/spans", content=valid.zipkin_v2_json(1, "x"),
                       headers={"Content-Type": JSON, "Content-Encoding": "gzip"}, timeout=10)
    assert reply.status_code == 400
    assert "cannot decompress gzip" in reply.text
    assert_nothing_stored(server)


@pytest.mark.parametrize("query", ["", "?service=a&service=b", "?other=x"])
def test_sampling_without_exactly_one_service_is_400(server: SpanlakeProcess, query: str) -> None:
    for base in (server.url("sampling") + "/sampling", server.url("jaeger_http") + "/api/sampling"):
        reply = httpx.get(base + query, timeout=10)
        assert reply.status_code == 400
        assert reply.text == "'service' parameter must be provided once"
    assert_nothing_stored(server)


def _raw_grpc(server: SpanlakeProcess, port: str, method: str, body: bytes) -> grpc.RpcError:
    with grpc.insecure_channel(f"127.0.0.1:{server.ports[port]}") as channel:
        call = channel.unary_unary(method)  # raw bytes: no client-side serializer to stop us
        with pytest.raises(grpc.RpcError) as err:
            call(body, timeout=10)
    return err.value


@pytest.mark.parametrize(("body", "words"), [
    (b"\xff\xff\xff garbage", "not a valid protobuf"),
    (valid.post_spans_request(1, "x").SerializeToString()[:-4], "not a valid protobuf"),
])
def test_jaeger_grpc_garbage_is_invalid_argument(server: SpanlakeProcess, body: bytes, words: str) -> None:
    err = _raw_grpc(server, "jaeger_grpc", POST_SPANS, body)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert words in str(err.details())
    assert_nothing_stored(server)


def test_jaeger_grpc_span_without_trace_id_is_invalid_argument(server: SpanlakeProcess) -> None:
    request = valid.post_spans_request(1, "x")
    request.batch.spans[0].trace_id = b""
    with grpc.insecure_channel(f"127.0.0.1:{server.ports['jaeger_grpc']}") as channel:
        stub = collector_pb2_grpc.CollectorServiceStub(channel)  # type: ignore[no-untyped-call]
        with pytest.raises(grpc.RpcError) as err:
            stub.PostSpans(request, timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "trace_id" in str(err.value.details())
    assert_nothing_stored(server)


def test_otlp_grpc_garbage_is_invalid_argument(server: SpanlakeProcess) -> None:
    err = _raw_grpc(server, "otlp_grpc", EXPORT, b"\x0a\xff\xff\xff\xff\x0f")
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details()
    assert_nothing_stored(server)


@pytest.mark.parametrize(("port", "protocol", "other"), [("jaeger_compact", "compact", "binary"),
                                                         ("jaeger_binary", "binary", "compact")])
def test_malformed_udp_packets_are_logged_and_dropped(server: SpanlakeProcess, port: str, protocol: str,
                                                      other: str) -> None:
    good = valid.agent_packet(1, "x", protocol)
    packets = [b"\x00garbage", good[:-5], valid.agent_packet(1, "x", other), b"\xff" * 100]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        for packet in packets:
            sender.sendto(packet, ("127.0.0.1", server.ports[port]))
    # A UDP sender cannot be answered: the documented outcome is a (rate-limited) log line.
    eventually(lambda: _logged(server, f"jaeger agent {protocol}: malformed packet"))
    assert_nothing_stored(server)


def _logged(server: SpanlakeProcess, text: str) -> None:
    assert text in server.log(), f"{text!r} not logged yet"


# ---- after all of the above: every listener still takes a valid request ------------------------------


def _post(server: SpanlakeProcess, port: str, path: str, content_type: str, body: bytes) -> None:
    reply = httpx.post(server.url(port) + path, content=body, headers={"Content-Type": content_type},
                       timeout=10)
    assert reply.status_code == 202, reply.text


def _udp(server: SpanlakeProcess, port: str, packet: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        sender.sendto(packet, ("127.0.0.1", server.ports[port]))


def _post_spans(server: SpanlakeProcess, n: int, service: str) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{server.ports['jaeger_grpc']}") as channel:
        stub = collector_pb2_grpc.CollectorServiceStub(channel)  # type: ignore[no-untyped-call]
        stub.PostSpans(valid.post_spans_request(n, service), timeout=10)


Sender = Callable[[SpanlakeProcess, int, str], None]
VALID_SENDERS: dict[str, Sender] = {
    "jaeger-thrift-http": lambda s, n, svc: _post(s, "jaeger_http", "/api/traces", THRIFT,
                                                  valid.jaeger_http_body(n, svc)),
    "jaeger-udp-compact": lambda s, n, svc: _udp(s, "jaeger_compact", valid.agent_packet(n, svc, "compact")),
    "jaeger-udp-binary": lambda s, n, svc: _udp(s, "jaeger_binary", valid.agent_packet(n, svc, "binary")),
    "jaeger-grpc": _post_spans,
    "zipkin-v2-json": lambda s, n, svc: _post(s, "zipkin", "/api/v2/spans", JSON,
                                              valid.zipkin_v2_json(n, svc)),
    "zipkin-v2-protobuf": lambda s, n, svc: _post(s, "zipkin", "/api/v2/spans", PROTO,
                                                  valid.zipkin_v2_proto(n, svc)),
    "zipkin-v1-json": lambda s, n, svc: _post(s, "zipkin", "/api/v1/spans", JSON,
                                              valid.zipkin_v1_json(n, svc)),
    "zipkin-v1-thrift": lambda s, n, svc: _post(s, "zipkin", "/api/v1/spans", THRIFT,
                                                valid.zipkin_v1_thrift(n, svc)),
    "otlp-http": lambda s, n, svc: send_http(s, valid.otlp_request(n, svc)),
    "otlp-grpc": lambda s, n, svc: send_grpc(s, valid.otlp_request(n, svc)),
}


@pytest.mark.parametrize(("n", "name"), list(enumerate(VALID_SENDERS, start=100)), ids=list(VALID_SENDERS))
def test_listener_still_stores_a_valid_request(server: SpanlakeProcess, n: int, name: str) -> None:
    VALID_SENDERS[name](server, n, name)
    trace = eventually(lambda: v1_trace(server, valid.trace_id(n)))
    assert {service_of(trace, span) for span in trace["spans"]} == {name}


def test_sampling_still_answers(server: SpanlakeProcess) -> None:
    reply = httpx.get(server.url("sampling") + "/sampling", params={"service": "any"}, timeout=10)
    assert reply.json() == {"strategyType": "PROBABILISTIC", "probabilisticSampling": {"samplingRate": 0.001}}


def test_the_nothing_stored_probe_sees_accepted_spans(server: SpanlakeProcess) -> None:
    """Run last: the WAL/segment probe the cases above rely on does see what the valid requests wrote."""
    assert stored_bytes(server.data_dir) > 0
