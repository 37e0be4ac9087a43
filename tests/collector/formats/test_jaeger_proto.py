from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from spanlake.collector.formats.errors import FormatError
from spanlake.collector.formats.jaeger_proto import decode_post_spans_request, post_spans_to_spans
from spanlake.collector.formats.proto import collector_pb2, model_pb2
from spanlake.storage.attributes import attr_value
from spanlake.storage.schema import ValueType
from tests.jaeger_model import otlp_fixture_differences, v1_trace_to_post_spans_requests
from tests.paths import FIXTURES, JAEGER_SUITE

V1_TRACES = sorted((FIXTURES / "jaeger" / "storage-integration-v1-model" / "traces").glob("*.json"))


def convert(path: Path) -> pa.Table:
    return pa.concat_tables([decode_post_spans_request(r.SerializeToString())
                             for r in v1_trace_to_post_spans_requests(path)])


@pytest.mark.parametrize("path", V1_TRACES, ids=lambda p: p.stem)
def test_v1_model_trace_converts_like_the_otlp_form_of_the_suite(path: Path) -> None:
    otlp = json.loads((JAEGER_SUITE / "traces" / path.name).read_text())
    assert otlp_fixture_differences(convert(path).to_pylist(), otlp) == []


def test_binary_tags_stay_bytes() -> None:
    rows = convert(V1_TRACES[[p.stem for p in V1_TRACES].index("span_tags_trace")]).to_pylist()
    blobs = [a for r in rows for a in r["span_attributes"] if a["key"] == "blob"]
    assert blobs and all(a["type"] == ValueType.BYTES and a["bytes"] == b"\x00\x0009" for a in blobs)


def span(**fields: object) -> model_pb2.Span:
    base: dict[str, object] = {"trace_id": bytes(15) + b"\x01", "span_id": bytes(7) + b"\x02",
                               "operation_name": "op", "start_time": Timestamp(seconds=100, nanos=5),
                               "duration": Duration(nanos=1500)}
    base.update(fields)
    return model_pb2.Span(**base)  # type: ignore[arg-type]


def request(*spans: model_pb2.Span, process: str = "batch-svc") -> collector_pb2.PostSpansRequest:
    return collector_pb2.PostSpansRequest(
        batch=model_pb2.Batch(spans=list(spans), process=model_pb2.Process(service_name=process)))


def test_span_process_overrides_the_batch_process() -> None:
    own = model_pb2.Process(service_name="own-svc", tags=[model_pb2.KeyValue(key="hostname", v_str="h1")])
    rows = post_spans_to_spans(request(span(), span(span_id=bytes(7) + b"\x03", process=own))).to_pylist()
    assert [r["service_name"] for r in rows] == ["batch-svc", "own-svc"]
    assert {a["key"]: attr_value(a) for a in rows[1]["resource_attributes"]} == {
        "service.name": "own-svc", "host.name": "h1"}


def test_times_keep_nanosecond_precision() -> None:
    (row,) = post_spans_to_spans(request(span())).to_pylist()
    assert row["start_time_unix_nano"] == 100_000_000_005
    assert row["duration_nano"] == 1500


def test_warnings_become_the_jaeger_warnings_attribute() -> None:
    (row,) = post_spans_to_spans(request(span(warnings=["clock skew", "dup"]))).to_pylist()
    (warnings,) = [a for a in row["span_attributes"] if a["key"] == "@jaeger@warnings"]
    assert warnings["type"] == ValueType.ARRAY and attr_value(warnings) == ["clock skew", "dup"]


def test_kind_and_error_tags_map_to_kind_and_status() -> None:
    tags = [model_pb2.KeyValue(key="span.kind", v_str="client"),
            model_pb2.KeyValue(key="error", v_type=model_pb2.BOOL, v_bool=True)]
    (row,) = post_spans_to_spans(request(span(tags=tags))).to_pylist()
    assert (row["kind"], row["status_code"], row["span_attributes"]) == (3, 2, [])


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"\xff\xff\xff", "not a valid protobuf"),
        (request(span()).SerializeToString()[:-3], "not a valid protobuf"),
        (request(span(trace_id=b"")).SerializeToString(), "trace_id is missing"),
        (request(span(trace_id=bytes(17))).SerializeToString(), "trace_id is 17 bytes"),
        (request(span(span_id=bytes(9))).SerializeToString(), "span_id is 9 bytes"),
    ],
)
def test_bad_requests_raise_format_error(payload: bytes, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        decode_post_spans_request(payload)
