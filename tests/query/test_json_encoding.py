"""The Jaeger API's response encoding: compact bodies (orjson) and ``prettyPrint`` bodies (json) are the
same JSON, including text outside ASCII and integers orjson cannot write."""

from __future__ import annotations

import json

from spanlake.query.jaeger_api import encode_json

BODY = {"data": [{"traceID": "abc", "tags": [{"key": "név", "type": "string", "value": "日本 \u2028 \"q\""},
                                            {"key": "big", "type": "int64", "value": 2**53 - 1},
                                            {"key": "r", "type": "float64", "value": 0.1}]}],
        "total": 0, "limit": 0, "offset": 0, "errors": None}


def test_compact_body_is_the_same_json_as_pretty() -> None:
    compact = encode_json(BODY)
    assert b"\n" not in compact and b": " not in compact
    assert json.loads(compact) == json.loads(encode_json(BODY, pretty=True)) == BODY


def test_pretty_body_is_indented_by_four() -> None:
    assert encode_json({"a": [1]}, pretty=True) == b'{\n    "a": [\n        1\n    ]\n}'


def test_integer_past_64_bits_is_still_written() -> None:
    assert json.loads(encode_json({"n": 2**70})) == {"n": 2**70}
