from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest

from spanlake.collector.formats.proto import (
    collector_pb2,
    collector_pb2_grpc,
    sampling_pb2,
    sampling_pb2_grpc,
)
from spanlake.collector.jaeger_grpc import add_collector_service, add_sampling_service
from spanlake.collector.sampling import SamplingStrategies
from spanlake.storage.api import SpanWriter
from tests.collector.jaeger_support import ListWriter, OverloadedWriter
from tests.jaeger_model import v1_trace_to_post_spans_requests
from tests.paths import FIXTURES

EXAMPLE = FIXTURES / "jaeger" / "storage-integration-v1-model" / "traces" / "example_trace.json"
STRATEGIES = SamplingStrategies.from_dict(
    {"service_strategies": [{"service": "limited", "type": "ratelimiting", "param": 5}]})


def serve(writer: SpanWriter) -> tuple[grpc.Server, grpc.Channel]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    add_collector_service(server, writer)
    add_sampling_service(server, STRATEGIES)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, grpc.insecure_channel(f"127.0.0.1:{port}")


@pytest.fixture
def writer() -> ListWriter:
    return ListWriter()


@pytest.fixture
def channel(writer: ListWriter) -> Iterator[grpc.Channel]:
    server, channel = serve(writer)
    yield channel
    channel.close()
    server.stop(None)


def test_post_spans_writes_every_span_of_the_suites_example_trace(channel: grpc.Channel,
                                                                  writer: ListWriter) -> None:
    stub = collector_pb2_grpc.CollectorServiceStub(channel)
    requests = v1_trace_to_post_spans_requests(EXAMPLE)
    for request in requests:
        assert isinstance(stub.PostSpans(request, timeout=5), collector_pb2.PostSpansResponse)
    rows = writer.rows()
    assert len(rows) == sum(len(r.batch.spans) for r in requests) == 5
    services = {r["service_name"] for r in rows}
    assert services == {"example-service-1", "example-service-2", "example-service-3"}


def raw_post(channel: grpc.Channel, body: bytes) -> bytes:
    call = channel.unary_unary("/jaeger.api_v2.CollectorService/PostSpans")
    return bytes(call(body, timeout=5))


def test_undecodable_request_gets_invalid_argument_and_nothing_is_written(channel: grpc.Channel,
                                                                          writer: ListWriter) -> None:
    with pytest.raises(grpc.RpcError) as info:
        raw_post(channel, b"\xff\xff\xff garbage")
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a valid protobuf" in str(info.value.details())
    assert writer.tables == []
    good = v1_trace_to_post_spans_requests(EXAMPLE)[0].SerializeToString()
    assert raw_post(channel, good) == b""  # still serving


def test_span_without_trace_id_gets_invalid_argument(channel: grpc.Channel, writer: ListWriter) -> None:
    request = v1_trace_to_post_spans_requests(EXAMPLE)[0]
    request.batch.spans[1].trace_id = b""
    with pytest.raises(grpc.RpcError) as info:
        collector_pb2_grpc.CollectorServiceStub(channel).PostSpans(request, timeout=5)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "batch.spans[1].trace_id" in str(info.value.details())
    assert writer.tables == []


def test_overloaded_store_gets_resource_exhausted() -> None:
    server, channel = serve(OverloadedWriter())
    try:
        with pytest.raises(grpc.RpcError) as info:
            collector_pb2_grpc.CollectorServiceStub(channel).PostSpans(
                v1_trace_to_post_spans_requests(EXAMPLE)[0], timeout=5)
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        channel.close()
        server.stop(None)


def test_sampling_manager_answers_per_service(channel: grpc.Channel) -> None:
    stub = sampling_pb2_grpc.SamplingManagerStub(channel)
    limited = stub.GetSamplingStrategy(sampling_pb2.SamplingStrategyParameters(serviceName="limited"))
    assert limited.strategyType == sampling_pb2.RATE_LIMITING
    assert limited.rateLimitingSampling.maxTracesPerSecond == 5
    other = stub.GetSamplingStrategy(sampling_pb2.SamplingStrategyParameters(serviceName="other"))
    assert other.strategyType == sampling_pb2.PROBABILISTIC
    assert other.probabilisticSampling.samplingRate == 0.001
