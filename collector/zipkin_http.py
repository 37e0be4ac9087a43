"""Zipkin ingest over HTTP (port 9411): ``POST /api/v2/spans`` and ``POST /api/v1/spans``.

What the Zipkin reporters and the OpenTelemetry Zipkin exporters send, and what the OpenTelemetry
collector's zipkinreceiver accepts (which Jaeger v2 serves on 9411):

- v2: JSON (the default, whatever the content type says is JSON or absent) or
  ``application/x-protobuf`` (zipkin.proto ``ListOfSpans``);
- v1: JSON, or ``application/x-thrift`` (a TBinaryProtocol ``list<Span>``);
- ``Content-Encoding: gzip`` or ``deflate``, both capped after decompression too.

Answers: 202 once the spans are durable; 400 with the decoder's message for a malformed body;
415 for a content type or encoding the path cannot take; 413 over ``max_body_bytes``; 503 with
``Retry-After`` when the store is overloaded. Nothing is written unless the whole body decodes.
"""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import PlainTextResponse

from spanlake.collector.admission import Admission
from spanlake.collector.formats.zipkin_v1 import decode_zipkin_v1_json, decode_zipkin_v1_thrift
from spanlake.collector.formats.zipkin_v2 import decode_zipkin_v2_json, decode_zipkin_v2_proto
from spanlake.collector.http_ingest import Refusal, Unsupported, ingest, media_type
from spanlake.storage.api import SpanWriter

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024  # after decompression; a Zipkin reporter batch is ~KBs
Decoder = Callable[[bytes], pa.Table]

_JSON_TYPES = ("", "application/json", "text/plain")  # reporters have sent both for JSON
_V2_DECODERS: dict[str, Decoder] = {
    **dict.fromkeys(_JSON_TYPES, decode_zipkin_v2_json),
    "application/x-protobuf": decode_zipkin_v2_proto,
    "application/protobuf": decode_zipkin_v2_proto,
}
_V1_DECODERS: dict[str, Decoder] = {
    **dict.fromkeys(_JSON_TYPES, decode_zipkin_v1_json),
    "application/x-thrift": decode_zipkin_v1_thrift,
    "application/vnd.apache.thrift.binary": decode_zipkin_v1_thrift,
}


def make_app(writer: SpanWriter, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> FastAPI:
    """The port-9411 ingest app writing every accepted batch to ``writer``."""
    app = FastAPI(title="spanlake Zipkin ingest", openapi_url=None, docs_url=None, redoc_url=None)
    app.include_router(make_router(writer, max_body_bytes))
    return app


def make_router(writer: SpanWriter, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> APIRouter:
    """The two ingest routes alone, for an app that also serves the Zipkin query API on 9411."""
    router = APIRouter()
    gate = Admission.of(writer)

    async def receive(request: Request, decoders: dict[str, Decoder]) -> Response:
        try:
            decode = _decoder(request, decoders)
        except Unsupported as exc:
            return PlainTextResponse(str(exc), status_code=415)
        outcome = await ingest(request, gate, max_body_bytes, lambda raw: _store(gate, decode, raw))
        if isinstance(outcome, Refusal):
            return _refused(outcome)
        return Response(status_code=202)

    @router.post("/api/v2/spans")
    async def post_v2(request: Request) -> Response:
        return await receive(request, _V2_DECODERS)

    @router.post("/api/v1/spans")
    async def post_v1(request: Request) -> Response:
        return await receive(request, _V1_DECODERS)

    return router


def _store(writer: SpanWriter, decode: Decoder, raw: bytes) -> None:
    table = decode(raw)
    if table.num_rows:  # an empty list is a valid report with nothing to store
        writer.write(table)


def _refused(refusal: Refusal) -> Response:
    message = refusal.message
    if refusal.kind == "undecodable":
        message = f"cannot decode spans: {message}"
    elif refusal.kind == "overloaded":
        message = f"retry later: {message}"
    return PlainTextResponse(message, status_code=refusal.status, headers=refusal.headers)


def _decoder(request: Request, decoders: dict[str, Decoder]) -> Decoder:
    media = media_type(request)
    try:
        return decoders[media]
    except KeyError:
        accepted = ", ".join(sorted(t for t in decoders if t))
        raise Unsupported(f"unsupported content type {media!r} on {request.url.path}; "
                          f"accepted: {accepted}") from None
