"""Bad OTLP input to a running server: the documented error, nothing stored, the server keeps running."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.otlp_data import make_request
from tests.server import SpanlakeProcess

LIMIT = 200_000
EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SpanlakeProcess]:
    proc = SpanlakeProcess(tmp_path_factory.mktemp("bad") / "data",
                           extra_args=["--max-request-bytes", str(LIMIT), "--flush-interval", "3600"])
    yield proc.start()
    proc.stop()


def _stored_bytes(data_dir: Path) -> int:
    """Bytes in the WAL and segments: 0 while nothing was ever stored."""
    files = [*data_dir.glob("wal/*/*.wal"), *data_dir.glob("spans/**/*.parquet")]
    return sum(p.stat().st_size for p in files)


def _post(server: SpanlakeProcess, body: bytes, content_type: str, **headers: str) -> httpx.Response:
    return httpx.post(f"{server.url('otlp_http')}/v1/traces", content=body, timeout=10,
                      headers={"Content-Type": content_type, **headers})


def _raw_export(server: SpanlakeProcess, body: bytes) -> grpc.RpcError:
    with grpc.insecure_channel(server.otlp_grpc_endpoint) as channel:
        call = channel.unary_unary(EXPORT)  # raw bytes: no client-side serializer to stop us
        with pytest.raises(grpc.RpcError) as err:
            call(body, timeout=10)
    return err.value


def _valid_body() -> bytes:
    return make_request(2, 3).SerializeToString()


@pytest.mark.parametrize(
    ("body", "content_type", "status", "words"),
    [
        (_valid_body()[:-7], "application/x-protobuf", 400, "protobuf"),
        (b"\xff\xff\xff\xff", "application/x-protobuf", 400, "protobuf"),
        (b'{"resourceSpans": [', "application/json", 400, "JSON"),
        (b'{"resourceSpans": {"oops": 1}}', "application/json", 400, "resourceSpans"),
        (_valid_body(), "text/plain", 415, "Content-Type"),
        (b"x" * (LIMIT + 1), "application/x-protobuf", 413, "limit"),
    ],
    ids=["truncated-protobuf", "garbage-protobuf", "invalid-json", "wrong-json-shape",
         "wrong-content-type", "oversized"],
)
def test_http_bad_body_is_refused_and_nothing_stored(server: SpanlakeProcess, body: bytes, content_type: str,
                                                     status: int, words: str) -> None:
    reply = _post(server, body, content_type)
    assert reply.status_code == status
    if reply.headers["content-type"].startswith("application/x-protobuf"):
        message = status_pb2.Status.FromString(reply.content).message
    else:
        message = reply.json()["message"]
    assert words.lower() in message.lower()
    assert _stored_bytes(server.data_dir) == 0
    assert server.alive()


def test_gzip_bomb_is_refused_by_decompressed_size(server: SpanlakeProcess) -> None:
    bomb = gzip.compress(b"\0" * (LIMIT * 20))
    assert len(bomb) < LIMIT
    reply = _post(server, bomb, "application/x-protobuf", **{"Content-Encoding": "gzip"})
    assert reply.status_code == 413
    assert _stored_bytes(server.data_dir) == 0


def test_zero_length_ids_are_rejected_and_counted(server: SpanlakeProcess) -> None:
    req = ExportTraceServiceRequest()
    req.CopyFrom(make_request(1, 2))
    for span in req.resource_spans[0].scope_spans[0].spans:
        span.trace_id = b""
    reply = _post(server, req.SerializeToString(), "application/x-protobuf")
    assert reply.status_code == 200
    partial = ExportTraceServiceResponse.FromString(reply.content).partial_success
    assert partial.rejected_spans == 2
    assert "trace" in partial.error_message.lower()
    assert _stored_bytes(server.data_dir) == 0


def test_grpc_garbage_is_invalid_argument(server: SpanlakeProcess) -> None:
    err = _raw_export(server, b"\x0a\xff\xff\xff\xff\x0f")
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details()
    assert _stored_bytes(server.data_dir) == 0


def test_grpc_oversized_is_resource_exhausted(server: SpanlakeProcess) -> None:
    err = _raw_export(server, b"\0" * (LIMIT + 1))
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert _stored_bytes(server.data_dir) == 0
    assert server.alive()


def test_valid_request_after_bad_ones_is_stored(server: SpanlakeProcess) -> None:
    """Run last in this module: the listener survived everything above and still stores spans."""
    req = make_request(1, 3)
    reply = _post(server, gzip.compress(req.SerializeToString()), "application/x-protobuf",
                  **{"Content-Encoding": "gzip"})
    assert reply.status_code == 200
    trace_id = req.resource_spans[0].scope_spans[0].spans[0].trace_id.hex()
    found = httpx.get(f"{server.query_url}/api/traces/{trace_id}", timeout=10)
    assert len(found.json()["data"][0]["spans"]) == 3
