"""Trace and span IDs as the Jaeger APIs write and accept them (jaeger-idl ``model/v1/ids.go``).

Output: lower-case hex; a trace ID whose high 64 bits are zero prints as 16 characters, as Jaeger's
``TraceID.String`` does, so links and bookmarks made against Jaeger keep working.
Input: 1-32 hex characters, any case, leading zeros optional; or, since jaeger#8828, base64 (standard
or URL alphabet, padded or not) of 16 or 8 bytes.
"""

from __future__ import annotations

import base64
import binascii
import re

_HEX = re.compile(r"[0-9a-fA-F]{1,32}")
_B64 = re.compile(r"[A-Za-z0-9+/_-]+=*")


class TraceIDError(ValueError):
    """An unparsable trace ID; the message names the bad input."""


def parse_trace_id(text: str) -> bytes:
    """A trace ID in any accepted form as 16 big-endian bytes."""
    if _HEX.fullmatch(text):
        return bytes.fromhex(text.rjust(32, "0"))
    decoded = _base64_id(text)
    if decoded is not None:
        return decoded
    if len(text) > 32 and all(c in "0123456789abcdefABCDEF" for c in text):
        raise TraceIDError(f"TraceID cannot be longer than 32 hex characters: {text}")
    raise TraceIDError(
        f"malformed trace ID {text!r}: expected 1-32 hex characters or base64 of 16 or 8 bytes"
    )


def _base64_id(text: str) -> bytes | None:
    if not _B64.fullmatch(text):
        return None
    body = text.rstrip("=").replace("-", "+").replace("_", "/")
    try:
        raw = base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) == 16:
        return raw
    if len(raw) == 8:  # a 64-bit Jaeger trace ID: the high half is zero
        return bytes(8) + raw
    return None


def format_trace_id(trace_id: bytes) -> str:
    """Jaeger v1 form: 16 hex characters when the high half is zero, else 32."""
    if trace_id[:8] == bytes(8):
        return trace_id[8:].hex()
    return trace_id.hex()


def format_span_id(span_id: bytes) -> str:
    return span_id.hex()
