"""OTLP/gRPC receiver: ``opentelemetry.proto.collector.trace.v1.TraceService/Export``.

The request is taken as raw bytes and decoded here rather than by grpc, so a malformed message
gets INVALID_ARGUMENT with a message saying what is wrong (grpc's own deserializer would answer
INTERNAL), and oversized messages get grpc's RESOURCE_EXHAUSTED from the receive-size limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent import futures

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from spanlake.collector.formats.errors import FormatError
from spanlake.collector.formats.otlp import decode_otlp_protobuf
from spanlake.storage.api import SpanWriter, StoreOverloaded

SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"


def export_handler(writer: SpanWriter) -> grpc.GenericRpcHandler:
    def export(body: bytes, context: grpc.ServicerContext) -> bytes:
        try:
            result = decode_otlp_protobuf(body)
            writer.write(result.spans)
        except FormatError as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except StoreOverloaded as exc:
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))
        reply = ExportTraceServiceResponse()
        if result.rejected:
            reply.partial_success.rejected_spans = result.rejected
            reply.partial_success.error_message = result.message
        data: bytes = reply.SerializeToString()
        return data

    method = grpc.unary_unary_rpc_method_handler(export)  # no (de)serializers: raw bytes both ways
    return grpc.method_handlers_generic_handler(SERVICE, {"Export": method})


def grpc_server(max_request_bytes: int, workers: int = 8,
                interceptors: Sequence[grpc.ServerInterceptor] = ()) -> grpc.Server:
    """A grpc server with spanlake's message-size limits, to which receivers add their handlers.

    ``interceptors`` run before every call (the composition root passes authentication in)."""
    options = [
        ("grpc.max_receive_message_length", max_request_bytes),
        ("grpc.max_send_message_length", 4 * 1024 * 1024),
    ]
    return grpc.server(futures.ThreadPoolExecutor(max_workers=workers), options=options,
                       interceptors=list(interceptors))
