"""One ingest path for every HTTP receiver (OTLP/HTTP, Jaeger Thrift over HTTP, Zipkin v1/v2).

The steps are the same for each protocol: the admission precheck (refuse before reading anything when
the store cannot take it), the body read with its size cap on the event loop, then inflating, decoding
and the durable write in a worker thread. What can go wrong is classified here, once, into a
``Refusal`` with the HTTP status; each receiver only renders a refusal in its protocol's own terms
(a ``google.rpc.Status`` for OTLP, Jaeger's and Zipkin's plain-text messages).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, TypeVar

import anyio.to_thread
from fastapi import Request

from spanlake.collector.admission import Admission
from spanlake.collector.bodies import BadEncoding, BodyTooLarge, UnsupportedEncoding, decompress, read_capped
from spanlake.collector.formats.errors import FormatError, TooManySpans
from spanlake.collector.retry import retry_after_header
from spanlake.storage.api import StoreOverloaded

T = TypeVar("T")

Kind = Literal["too_large", "unsupported", "bad_encoding", "undecodable", "overloaded"]


@dataclass(frozen=True)
class Refusal:
    """Why a request stored nothing, and the HTTP answer it gets."""

    kind: Kind
    status: int
    message: str
    headers: dict[str, str] = field(default_factory=dict)
    overload: StoreOverloaded | None = None  # for OTLP's retryable Status with RetryInfo


class Unsupported(Exception):
    """A content type the route cannot take (HTTP 415); raised by a receiver's ``choose`` step."""


def refusal_for(exc: Exception) -> Refusal | None:
    """The one table from what went wrong to the answer; None for a failure nobody anticipated."""
    if isinstance(exc, BodyTooLarge | TooManySpans):
        return Refusal("too_large", 413, str(exc))
    if isinstance(exc, UnsupportedEncoding | Unsupported):
        return Refusal("unsupported", 415, str(exc))
    if isinstance(exc, BadEncoding):
        return Refusal("bad_encoding", 400, str(exc))
    if isinstance(exc, FormatError):
        return Refusal("undecodable", 400, str(exc))
    if isinstance(exc, StoreOverloaded):
        return Refusal("overloaded", 503, str(exc), retry_after_header(exc), exc)
    return None


async def ingest(request: Request, gate: Admission, max_bytes: int,
                 store: Callable[[bytes], T]) -> T | Refusal:
    """Read, inflate and hand the body to ``store`` (decode and durable write, run in a worker thread).

    ``store``'s result once the spans are durable, or the ``Refusal`` that says why nothing was kept.
    """
    try:
        gate.precheck()  # a refused request costs neither the read nor the decode
        body = await read_capped(request, max_bytes)
        encoding = request.headers.get("content-encoding", "")
        # Inflating and decoding are CPU work and the write blocks until durable: off the event loop.
        return await anyio.to_thread.run_sync(lambda: store(decompress(body, encoding, max_bytes)))
    except Exception as exc:
        refusal = refusal_for(exc)
        if refusal is None:
            raise
        return refusal


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()
