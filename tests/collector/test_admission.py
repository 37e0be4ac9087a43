"""Admission: the limits and data-quality rules every receiver applies before storing (issue 14)."""

from __future__ import annotations

import gzip
import json
import time

import pytest
from google.protobuf import json_format

from spanlake.collector.admission import WARNINGS_KEY, Admission, IngestLimits
from spanlake.collector.bodies import BadEncoding, decompress
from spanlake.collector.formats.errors import TooManySpans
from spanlake.collector.formats.otlp import decode_otlp_json, decode_otlp_protobuf
from spanlake.collector.formats.result import ConvertResult
from spanlake.storage.api import StoreOverloaded
from spanlake.storage.attributes import attr_value
from spanlake.storage.rows import spans_table
from tests.otlp_data import make_request
from tests.storage.memory import MemoryStore
from tests.storage.spans import span

HOUR_NS = 3600 * 10**9
NOW = time.time_ns()


def _gate(**limits: int) -> tuple[Admission, MemoryStore]:
    store = MemoryStore()
    return Admission(store, IngestLimits(**limits)), store


def test_negative_duration_is_clamped_to_zero_with_a_warning() -> None:
    gate, store = _gate()
    spans = spans_table([span(1, 1, "svc", start=NOW, duration=-5000), span(1, 2, "svc", start=NOW)])
    result = gate.admit(ConvertResult(spans), now_ns=NOW)
    assert result.rejected == 0
    stored = {r["span_id"]: r for r in store.get_traces([(1).to_bytes(16, "big")]).to_pylist()}
    bad = stored[(1).to_bytes(8, "big")]
    assert bad["duration_nano"] == 0 and bad["end_time_unix_nano"] == bad["start_time_unix_nano"]
    (warning,) = [a for a in bad["span_attributes"] if a["key"] == WARNINGS_KEY]
    assert "negative duration" in attr_value(warning)[0]
    good = stored[(2).to_bytes(8, "big")]
    assert good["duration_nano"] == 1000
    assert not any(a["key"] == WARNINGS_KEY for a in good["span_attributes"])


def test_start_times_outside_the_window_are_rejected_per_span() -> None:
    gate, store = _gate(max_span_age_ns=24 * HOUR_NS, max_span_future_ns=HOUR_NS)
    year_1938 = -1_009_000_000 * 10**9
    spans = spans_table([span(1, 1, "svc", start=NOW), span(2, 1, "svc", start=year_1938),
                         span(3, 1, "svc", start=NOW - 48 * HOUR_NS),
                         span(4, 1, "svc", start=NOW + 2 * HOUR_NS)])
    result = gate.admit(ConvertResult(spans), now_ns=NOW)
    assert result.rejected == 3
    assert "start time outside the accepted window" in result.message
    assert result.spans.num_rows == 1
    assert store.get_traces([(1).to_bytes(16, "big")]).num_rows == 1
    assert store.get_traces([(2).to_bytes(16, "big")]).num_rows == 0


def test_a_timestamp_past_int64_rejects_only_its_span() -> None:
    # Issue 14, case 9: it used to fail the whole OTLP request while bad IDs got partial success.
    request = make_request(traces=3, spans_per_trace=2)
    request.resource_spans[0].scope_spans[0].spans[0].start_time_unix_nano = 2**64 - 1
    gate, _ = _gate()
    result = gate.admit(decode_otlp_protobuf(request.SerializeToString()))
    assert (result.rejected, result.spans.num_rows) == (1, 5)


def test_a_trace_over_its_span_limit_keeps_its_first_spans_across_requests() -> None:
    gate, store = _gate(max_spans_per_trace=5)
    first = gate.admit(ConvertResult(spans_table([span(1, i, "svc", start=NOW) for i in range(1, 4)])))
    second = gate.admit(ConvertResult(spans_table([span(1, i, "svc", start=NOW) for i in range(4, 8)]
                                                  + [span(2, 1, "svc", start=NOW)])))
    assert (first.rejected, second.rejected) == (0, 2)
    assert "per-trace limit" in second.message
    assert store.get_traces([(1).to_bytes(16, "big")]).num_rows == 5
    assert store.get_traces([(2).to_bytes(16, "big")]).num_rows == 1


def test_a_trace_over_its_byte_limit_is_cut() -> None:
    spans = spans_table([span(1, i, "svc", start=NOW) for i in range(1, 101)])
    gate, _ = _gate(max_bytes_per_trace=spans.nbytes // 4)
    result = gate.admit(ConvertResult(spans))
    assert 0 < result.spans.num_rows <= 26 and result.rejected == 100 - result.spans.num_rows


def test_a_request_over_the_span_limit_is_refused_as_a_whole() -> None:
    gate, store = _gate(max_spans_per_request=10)
    with pytest.raises(TooManySpans, match="max-spans-per-request"):
        gate.admit(ConvertResult(spans_table([span(1, i, "svc", start=NOW) for i in range(1, 12)])))
    assert store.get_traces([(1).to_bytes(16, "big")]).num_rows == 0
    with pytest.raises(TooManySpans):  # the protobuf decoder counts before decoding the spans
        decode_otlp_protobuf(make_request(3, 4).SerializeToString(), max_spans=10)
    with pytest.raises(TooManySpans):  # and the JSON one before converting them
        decode_otlp_json(json_format.MessageToJson(make_request(3, 4)), max_spans=10)


def test_precheck_refuses_before_decoding_when_the_store_is_full() -> None:
    class Full(MemoryStore):
        def check_capacity(self, incoming_spans: int = 0) -> None:
            raise StoreOverloaded("full", retry_after_s=2)

    with pytest.raises(StoreOverloaded):
        Admission(Full()).precheck()


def test_gzip_with_trailing_garbage_is_refused_but_several_members_are_not() -> None:
    body = json.dumps({"resourceSpans": []}).encode()
    with pytest.raises(BadEncoding, match="trailing data"):
        decompress(gzip.compress(body) + b"garbage", "gzip", 1 << 20)
    assert decompress(gzip.compress(body[:5]) + gzip.compress(body[5:]), "gzip", 1 << 20) == body
