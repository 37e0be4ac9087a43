from __future__ import annotations

import base64

import pytest

from spanlake.query.ids import TraceIDError, format_span_id, format_trace_id, parse_trace_id

FULL = bytes.fromhex("83a9efd15c1c98a977e0711cc93ee28b")
LOW_ONLY = bytes(8) + bytes.fromhex("52969a8955571a3f")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("83a9efd15c1c98a977e0711cc93ee28b", FULL),
        ("83A9EFD15C1C98A977E0711CC93EE28B", FULL),
        ("52969a8955571a3f", LOW_ONLY),
        ("000000000000000052969a8955571a3f", LOW_ONLY),
        ("1", bytes(15) + b"\x01"),
        ("abc", bytes(14) + b"\x0a\xbc"),
        (base64.b64encode(FULL).decode(), FULL),
        (base64.b64encode(FULL).decode().rstrip("="), FULL),
        (base64.urlsafe_b64encode(bytes.fromhex("fbff" * 8)).decode(), bytes.fromhex("fbff" * 8)),
        (base64.b64encode(LOW_ONLY[8:]).decode(), LOW_ONLY),
    ],
)
def test_accepted_trace_id_forms(text, expected):
    assert parse_trace_id(text) == expected


@pytest.mark.parametrize("text", ["", "xyz!", "0" * 33, "g" * 16, base64.b64encode(b"12345").decode()])
def test_malformed_trace_ids_are_rejected(text):
    with pytest.raises(TraceIDError):
        parse_trace_id(text)


def test_too_long_hex_id_names_the_limit():
    with pytest.raises(TraceIDError, match="longer than 32 hex characters"):
        parse_trace_id("1" * 33)


def test_ids_print_short_when_high_half_is_zero():
    assert format_trace_id(LOW_ONLY) == "52969a8955571a3f"
    assert format_trace_id(FULL) == "83a9efd15c1c98a977e0711cc93ee28b"
    assert format_trace_id(bytes(16)) == "0000000000000000"
    assert format_span_id(bytes(7) + b"\x02") == "0000000000000002"


def test_text_that_is_valid_hex_is_read_as_hex_not_base64():
    # "AAAAAAAAABE" is also unpadded base64 of 8 bytes; hex is Jaeger's canonical form, so it wins.
    assert parse_trace_id("AAAAAAAAABE") == bytes.fromhex("aaaaaaaaabe".rjust(32, "0"))
    assert parse_trace_id("AAAAAAAAABE=") == bytes(15) + b"\x11"
