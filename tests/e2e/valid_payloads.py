"""One small valid request per ingest port, each its own trace and service, built with the real wire
libraries (Thrift IDL field ids, zipkin.proto, Jaeger api_v2 protos, opentelemetry-proto)."""

from __future__ import annotations

import copy
import json
import time
from typing import Any

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from spanlake.collector.formats.proto import collector_pb2, model_pb2
from spanlake.collector.formats.proto.zipkin import ListOfSpans
from spanlake.collector.formats.thrift import MessageType, TType
from tests.collector.formats.thrift_write import write_binary_message, write_compact_message
from tests.collector.zipkin_payloads import thrift_bytes
from tests.e2e.otlp_build import SpanSpec, build_request
from tests.jaeger_model import thrift_batch, thrift_batch_bytes
from tests.paths import FIXTURES

_HIGH = 0x511E_0000_0000_0000  # positive as a signed i64: Thrift carries IDs as i64
_JAEGER_BATCH = json.loads(
    (FIXTURES / "jaeger" / "thrift-jaeger-to-domain" / "thrift_batch_01.json").read_text())


def trace_id(n: int) -> str:
    return f"{_HIGH:016x}{n:016x}"


def now_us() -> int:
    return time.time_ns() // 1000 - 60_000_000


def jaeger_batch(n: int, service: str) -> dict[str, Any]:
    """Jaeger's ``thrift_batch_01`` fixture, moved to trace ``trace_id(n)`` and ``service``."""
    batch: dict[str, Any] = copy.deepcopy(_JAEGER_BATCH)
    batch["process"]["serviceName"] = service
    for span in batch["spans"]:
        span.update(traceIdLow=n, traceIdHigh=_HIGH, startTime=now_us())
    return batch


def jaeger_http_body(n: int, service: str) -> bytes:
    return thrift_batch_bytes(jaeger_batch(n, service))


def agent_packet(n: int, service: str, protocol: str) -> bytes:
    write = write_compact_message if protocol == "compact" else write_binary_message
    args = {1: (TType.STRUCT, thrift_batch(jaeger_batch(n, service)))}
    return write("emitBatch", MessageType.ONEWAY, 0, args)


def post_spans_request(n: int, service: str) -> collector_pb2.PostSpansRequest:
    start = time.time_ns() - 60 * 10**9
    span = model_pb2.Span(trace_id=bytes.fromhex(trace_id(n)), span_id=(1).to_bytes(8, "big"),
                          operation_name="alive", start_time=Timestamp(seconds=start // 10**9),
                          duration=Duration(nanos=5000))
    return collector_pb2.PostSpansRequest(
        batch=model_pb2.Batch(process=model_pb2.Process(service_name=service), spans=[span]))


def zipkin_v2_json(n: int, service: str) -> bytes:
    return json.dumps([{"traceId": trace_id(n), "id": "0000000000000001", "name": "alive", "kind": "SERVER",
                        "timestamp": now_us(), "duration": 5,
                        "localEndpoint": {"serviceName": service}}]).encode()


def zipkin_v2_proto(n: int, service: str) -> bytes:
    spans = ListOfSpans()
    span = spans.spans.add(trace_id=bytes.fromhex(trace_id(n)), id=(1).to_bytes(8, "big"), name="alive",
                           timestamp=now_us(), duration=5)
    span.local_endpoint.service_name = service
    data: bytes = spans.SerializeToString()
    return data


def zipkin_v1_json(n: int, service: str) -> bytes:
    ts = now_us()
    endpoint = {"serviceName": service, "ipv4": "10.0.0.1"}
    return json.dumps([{"traceId": trace_id(n), "id": "0000000000000001", "name": "alive",
                        "timestamp": ts, "duration": 5,
                        "annotations": [{"timestamp": ts, "value": "sr", "endpoint": endpoint},
                                        {"timestamp": ts + 5, "value": "ss", "endpoint": endpoint}],
                        }]).encode()


def zipkin_v1_thrift(n: int, service: str) -> bytes:
    ts = now_us()
    host = {"ipv4": 0x0A000001, "port": 80, "service_name": service}
    return thrift_bytes([{"trace_id": n, "trace_id_high": _HIGH, "id": 1, "name": "alive",
                          "timestamp": ts, "duration": 5,
                          "annotations": [{"timestamp": ts, "value": "sr", "host": host},
                                          {"timestamp": ts + 5, "value": "ss", "host": host}]}])


def otlp_request(n: int, service: str) -> Any:
    return build_request([SpanSpec(bytes.fromhex(trace_id(n)), (1).to_bytes(8, "big"), service, "alive",
                                   start_ns=time.time_ns() - 60 * 10**9)])
