"""Reading HTTP request bodies safely: size caps before and after decompression."""

from __future__ import annotations

import zlib

from fastapi import Request


class BodyTooLarge(Exception):
    pass


class BadEncoding(Exception):
    pass


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The request body, decompressed per ``Content-Encoding`` (gzip, deflate, identity).

    Refuses (BodyTooLarge) as soon as the wire body or the decompressed body exceeds ``max_bytes``,
    so neither a huge upload nor a small zip bomb can take the server's memory.
    """
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise BodyTooLarge(f"request body of {declared} bytes exceeds the limit of {max_bytes} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise BodyTooLarge(f"request body exceeds the limit of {max_bytes} bytes")
        chunks.append(chunk)
    return decompress(b"".join(chunks), request.headers.get("content-encoding", ""), max_bytes)


def decompress(body: bytes, encoding: str, max_bytes: int) -> bytes:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise BadEncoding(f"unsupported Content-Encoding {encoding!r}; use gzip, deflate or identity")
    wbits = 16 + zlib.MAX_WBITS if encoding != "deflate" else zlib.MAX_WBITS
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(body, max_bytes + 1)
    except zlib.error as exc:
        raise BadEncoding(f"body is not valid {encoding} data: {exc}") from exc
    if len(out) > max_bytes or inflater.unconsumed_tail:
        raise BodyTooLarge(f"decompressed request body exceeds the limit of {max_bytes} bytes")
    if not inflater.eof:
        raise BadEncoding(f"body is truncated {encoding} data")
    return out
