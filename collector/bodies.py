"""Reading HTTP request bodies safely: size caps before and after decompression.

Receivers read the (still compressed) body on the event loop with ``read_capped`` and inflate it
with ``decompress`` in a worker thread, next to decoding: inflating is CPU work.
"""

from __future__ import annotations

import zlib

from fastapi import Request


class BodyTooLarge(Exception):
    """The body, on the wire or inflated, is over the limit (HTTP 413)."""


class BadEncoding(Exception):
    """The body is not valid data in its declared Content-Encoding (HTTP 400)."""


class UnsupportedEncoding(BadEncoding):
    """A Content-Encoding other than gzip, deflate or identity (HTTP 415)."""


async def read_capped(request: Request, max_bytes: int) -> bytes:
    """The raw request body; BodyTooLarge as soon as it exceeds ``max_bytes``."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise BodyTooLarge(f"request body of {declared} bytes exceeds the limit of {max_bytes} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise BodyTooLarge(f"request body exceeds the limit of {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def decompress(body: bytes, encoding: str, max_bytes: int) -> bytes:
    """``body`` inflated per ``Content-Encoding``; a small zip bomb stops at ``max_bytes``."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding in ("gzip", "x-gzip"):
        wbits = 16 + zlib.MAX_WBITS
    elif encoding == "deflate":
        # HTTP "deflate" means zlib-wrapped (first byte 0x78), but some clients send raw deflate.
        wbits = zlib.MAX_WBITS if body[:1] == b"\x78" else -zlib.MAX_WBITS
    else:
        raise UnsupportedEncoding(f"unsupported Content-Encoding {encoding!r}; use gzip, deflate or identity")
    out = bytearray()
    rest = body
    while True:
        inflater = zlib.decompressobj(wbits)
        try:
            out += inflater.decompress(rest, max_bytes + 1 - len(out))
        except zlib.error as exc:
            raise BadEncoding(f"cannot decompress {encoding} body: {exc}") from exc
        if len(out) > max_bytes or inflater.unconsumed_tail:
            raise BodyTooLarge(f"decompressed request body exceeds the limit of {max_bytes} bytes")
        if not inflater.eof:
            raise BadEncoding(f"cannot decompress {encoding} body: it is truncated")
        rest = inflater.unused_data
        # Strict: after the stream only another gzip member may follow (RFC 1952 allows several);
        # anything else is trailing garbage, which zlib alone silently ignored (issue 14).
        if not rest:
            return bytes(out)
        if wbits != 16 + zlib.MAX_WBITS or not rest.startswith(b"\x1f\x8b"):
            raise BadEncoding(f"cannot decompress {encoding} body: {len(rest)} bytes of trailing data "
                              "after the compressed stream")
