"""Fuzz every ingest decoder: any input either decodes or raises ``FormatError`` (HTTP 400 / gRPC
INVALID_ARGUMENT), and what decodes passes admission. Never another exception, which a transport
would answer with a 5xx."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from typing import Any

import pytest
from google.protobuf import json_format
from hypothesis import given
from hypothesis import strategies as st

from spanlake.collector.admission import Admission, IngestLimits
from spanlake.collector.bodies import BadEncoding, BodyTooLarge, decompress
from spanlake.collector.formats.errors import FormatError, TooManySpans
from spanlake.collector.formats.jaeger_proto import decode_post_spans_request
from spanlake.collector.formats.jaeger_thrift import (
    decode_agent_binary,
    decode_agent_compact,
    decode_thrift_binary_batch,
)
from spanlake.collector.formats.otlp import decode_otlp_json, decode_otlp_protobuf
from spanlake.collector.formats.result import ConvertResult
from spanlake.collector.formats.zipkin_v1 import decode_zipkin_v1_json, decode_zipkin_v1_thrift
from spanlake.collector.formats.zipkin_v2 import decode_zipkin_v2_json, decode_zipkin_v2_proto
from tests.e2e import valid_payloads as valid
from tests.fuzz.conftest import count_case
from tests.fuzz.strategies import json_documents, mutated
from tests.storage.memory import MemoryStore

pytestmark = pytest.mark.fuzz

_GATE = Admission(MemoryStore(), IngestLimits(max_span_age_ns=10**18, max_span_future_ns=10**18))


def _decodes_or_format_error(decode: Callable[[bytes], Any], data: bytes) -> None:
    count_case()
    try:
        out = decode(data)
    except (FormatError, TooManySpans):
        return
    _GATE.admit(out if isinstance(out, ConvertResult) else ConvertResult(out))


_OTLP = valid.otlp_request(1, "fuzz")
_BINARY_DECODERS: dict[str, tuple[Callable[[bytes], Any], bytes]] = {
    "otlp-protobuf": (decode_otlp_protobuf, _OTLP.SerializeToString()),
    "jaeger-thrift-http": (decode_thrift_binary_batch, valid.jaeger_http_body(1, "fuzz")),
    "jaeger-agent-compact": (decode_agent_compact, valid.agent_packet(1, "fuzz", "compact")),
    "jaeger-agent-binary": (decode_agent_binary, valid.agent_packet(1, "fuzz", "binary")),
    "jaeger-proto": (decode_post_spans_request, valid.post_spans_request(1, "fuzz").SerializeToString()),
    "zipkin-v2-proto": (decode_zipkin_v2_proto, valid.zipkin_v2_proto(1, "fuzz")),
    "zipkin-v1-thrift": (decode_zipkin_v1_thrift, valid.zipkin_v1_thrift(1, "fuzz")),
}
_JSON_DECODERS: dict[str, tuple[Callable[[bytes], Any], bytes]] = {
    "otlp-json": (decode_otlp_json, json_format.MessageToJson(_OTLP).encode()),
    "zipkin-v2-json": (decode_zipkin_v2_json, valid.zipkin_v2_json(1, "fuzz")),
    "zipkin-v1-json": (decode_zipkin_v1_json, valid.zipkin_v1_json(1, "fuzz")),
}


@pytest.mark.parametrize("name", sorted(_BINARY_DECODERS))
@given(data=st.data())
def test_binary_decoder_gives_spans_or_a_format_error(name: str, data: st.DataObject) -> None:
    decode, sample = _BINARY_DECODERS[name]
    _decodes_or_format_error(decode, data.draw(mutated(sample)))


@pytest.mark.parametrize("name", sorted(_JSON_DECODERS))
@given(data=st.data())
def test_json_decoder_gives_spans_or_a_format_error(name: str, data: st.DataObject) -> None:
    decode, sample = _JSON_DECODERS[name]
    _decodes_or_format_error(decode, data.draw(json_documents(json.loads(sample))))


@given(body=st.one_of(st.binary(max_size=300), mutated(gzip.compress(b"x" * 100))),
       encoding=st.sampled_from(["gzip", "deflate", "x-gzip", "identity", "br", ""]))
def test_decompress_gives_bytes_or_a_client_error(body: bytes, encoding: str) -> None:
    count_case()
    try:
        decompress(body, encoding, 1000)
    except (BadEncoding, BodyTooLarge):
        pass
