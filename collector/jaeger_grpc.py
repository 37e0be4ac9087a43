"""Jaeger gRPC (port 14250): ``jaeger.api_v2.CollectorService/PostSpans`` and
``jaeger.api_v2.SamplingManager/GetSamplingStrategy``.

Requests arrive as raw bytes and are decoded here, not by grpc, so a malformed message gets
INVALID_ARGUMENT saying what is wrong (grpc's own deserializer would answer INTERNAL). An overloaded
store gives RESOURCE_EXHAUSTED so clients back off. grpc's sync server runs handlers on its thread
pool, so the blocking ``writer.write`` never runs on an event loop.
"""

from __future__ import annotations

import grpc
from google.protobuf.message import DecodeError

from spanlake.collector.admission import Admission
from spanlake.collector.formats.errors import FormatError, TooManySpans
from spanlake.collector.formats.jaeger_proto import decode_post_spans_request
from spanlake.collector.formats.proto import collector_pb2, sampling_pb2
from spanlake.collector.retry import abort_retryable
from spanlake.collector.sampling import SamplingStrategies
from spanlake.storage.api import SpanWriter, StoreOverloaded

COLLECTOR_SERVICE = "jaeger.api_v2.CollectorService"
SAMPLING_SERVICE = "jaeger.api_v2.SamplingManager"


def add_collector_service(server: grpc.Server, writer: SpanWriter) -> None:
    """Register ``CollectorService/PostSpans`` on ``server``, writing spans to ``writer``."""

    gate = Admission.of(writer)

    def post_spans(body: bytes, context: grpc.ServicerContext) -> bytes:
        try:
            gate.precheck()
            spans = decode_post_spans_request(body)
            if spans.num_rows:
                gate.write(spans)
        except FormatError as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except TooManySpans as exc:
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))
        except StoreOverloaded as exc:
            abort_retryable(context, exc)
        return bytes(collector_pb2.PostSpansResponse().SerializeToString())

    method = grpc.unary_unary_rpc_method_handler(post_spans)  # raw bytes both ways
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(COLLECTOR_SERVICE,
                                                                          {"PostSpans": method})])


def add_sampling_service(server: grpc.Server, strategies: SamplingStrategies) -> None:
    """Register ``SamplingManager/GetSamplingStrategy`` answering from ``strategies``."""

    def get_strategy(body: bytes, context: grpc.ServicerContext) -> bytes:
        params = sampling_pb2.SamplingStrategyParameters()
        try:
            params.ParseFromString(body)
        except DecodeError as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"SamplingStrategyParameters: {exc}")
        return bytes(strategies.get(params.serviceName).SerializeToString())

    method = grpc.unary_unary_rpc_method_handler(get_strategy)
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(SAMPLING_SERVICE,
                                                                          {"GetSamplingStrategy": method})])
