"""Helpers for the issue-14 end-to-end tests: OTLP over both transports, answers decoded."""

from __future__ import annotations

import grpc
import httpx
from google.protobuf.duration_pb2 import Duration
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub

from tests.server import SpanlakeProcess

PROTO = "application/x-protobuf"


def post_otlp(server: SpanlakeProcess, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(f"{server.url('otlp_http')}/v1/traces", content=body,
                      headers={"Content-Type": PROTO, **(headers or {})}, timeout=30)


def partial_success(reply: httpx.Response) -> tuple[int, str]:
    assert reply.status_code == 200, reply.text
    answer = ExportTraceServiceResponse.FromString(reply.content)
    return answer.partial_success.rejected_spans, answer.partial_success.error_message


def grpc_export(server: SpanlakeProcess, request: ExportTraceServiceRequest) -> grpc.RpcError | None:
    """None when the export succeeded, else the call's error (code, details, trailers)."""
    with grpc.insecure_channel(server.otlp_grpc_endpoint) as channel:
        try:
            TraceServiceStub(channel).Export(request, timeout=30)
        except grpc.RpcError as exc:
            return exc
    return None


def retry_delay(error: grpc.RpcError) -> Duration | None:
    """The ``google.rpc.RetryInfo`` delay in a gRPC error's status details, if any."""
    for key, value in error.trailing_metadata() or ():  # type: ignore[attr-defined]
        if key == "grpc-status-details-bin":
            for detail in status_pb2.Status.FromString(value).details:
                info = error_details_pb2.RetryInfo()
                if detail.Unpack(info):
                    return info.retry_delay
    return None
