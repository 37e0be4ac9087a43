"""Jaeger collector HTTP (port 14268): ``POST /api/traces`` with a Thrift binary ``jaeger.Batch``.

As Jaeger's own handler: ``application/x-thrift`` or ``application/vnd.apache.thrift.binary``, 202 on
success, 400 ``Unsupported content type: ...`` for other types and 400 ``Unable to process request
body: ...`` (with what is wrong) for a body that does not decode. Also 413 for bodies over the cap
(checked again after gzip/deflate decompression), 503 with ``Retry-After`` when the store is overloaded,
and Jaeger v1's ``GET /api/sampling?service=`` on the same port. Nothing is written unless the whole
body decodes.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response

from spanlake.collector.admission import Admission
from spanlake.collector.formats.jaeger_thrift import decode_thrift_binary_batch
from spanlake.collector.http_ingest import Refusal, ingest, media_type
from spanlake.collector.sampling import SamplingStrategies, sampling_response
from spanlake.storage.api import SpanWriter

THRIFT_CONTENT_TYPES = ("application/x-thrift", "application/vnd.apache.thrift.binary")
DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024


def make_app(
    writer: SpanWriter,
    sampling: SamplingStrategies,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    binary_as_base64: bool = True,
) -> FastAPI:
    """The port-14268 app. ``binary_as_base64``: see ``jaeger_thrift.batch_to_spans``."""
    app = FastAPI(title="spanlake Jaeger collector HTTP", docs_url=None, redoc_url=None, openapi_url=None)
    gate = Admission.of(writer)

    @app.post("/api/traces")
    async def post_traces(request: Request) -> Response:
        media = media_type(request)
        if media not in THRIFT_CONTENT_TYPES:
            return PlainTextResponse(f"Unsupported content type: {media or '(none)'}", status_code=400)
        outcome = await ingest(request, gate, max_body_bytes,
                               lambda raw: _decode_and_write(gate, raw, binary_as_base64))
        if isinstance(outcome, Refusal):
            return _refused(outcome)
        return Response(status_code=202)

    @app.get("/api/sampling")
    def get_sampling(request: Request) -> Response:
        return sampling_response(sampling, request)

    return app


def _decode_and_write(writer: SpanWriter, raw: bytes, binary_as_base64: bool) -> None:
    spans = decode_thrift_binary_batch(raw, binary_as_base64=binary_as_base64)
    if spans.num_rows:
        writer.write(spans)


def _refused(refusal: Refusal) -> Response:
    """Jaeger's wording: "Unable to process request body: ..." for what does not decode."""
    message = refusal.message
    if refusal.kind in ("bad_encoding", "undecodable"):
        message = f"Unable to process request body: {message}"
    elif refusal.kind == "overloaded":
        message = f"retry later: {message}"
    return PlainTextResponse(message, status_code=refusal.status, headers=refusal.headers)
