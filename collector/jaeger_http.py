"""Jaeger collector HTTP (port 14268): ``POST /api/traces`` with a Thrift binary ``jaeger.Batch``.

As Jaeger's own handler: ``application/x-thrift`` or ``application/vnd.apache.thrift.binary``, 202 on
success, 400 ``Unsupported content type: ...`` for other types and 400 ``Unable to process request
body: ...`` (with what is wrong) for a body that does not decode. Also 413 for bodies over the cap
(checked again after gzip/deflate decompression), 503 with ``Retry-After`` when the store is overloaded,
and Jaeger v1's ``GET /api/sampling?service=`` on the same port. Nothing is written unless the whole
body decodes.
"""

from __future__ import annotations

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response

from spanlake.collector.admission import Admission
from spanlake.collector.bodies import BadEncoding, BodyTooLarge, UnsupportedEncoding, decompress, read_capped
from spanlake.collector.formats.errors import FormatError, TooManySpans
from spanlake.collector.formats.jaeger_thrift import decode_thrift_binary_batch
from spanlake.collector.retry import retry_after_header
from spanlake.collector.sampling import SamplingStrategies, sampling_response
from spanlake.storage.api import SpanWriter, StoreOverloaded

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
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media not in THRIFT_CONTENT_TYPES:
            return PlainTextResponse(f"Unsupported content type: {media or '(none)'}", status_code=400)
        try:
            gate.precheck()
            body = await read_capped(request, max_body_bytes)
            encoding = request.headers.get("content-encoding", "")
            # Inflating and decoding are CPU work and write() blocks until durable: off the event loop.
            await anyio.to_thread.run_sync(_decode_and_write, gate, body, binary_as_base64, encoding,
                                           max_body_bytes)
        except (BodyTooLarge, TooManySpans) as exc:
            return PlainTextResponse(str(exc), status_code=413)
        except UnsupportedEncoding as exc:
            return PlainTextResponse(str(exc), status_code=415)
        except (FormatError, BadEncoding) as exc:
            return PlainTextResponse(f"Unable to process request body: {exc}", status_code=400)
        except StoreOverloaded as exc:
            return PlainTextResponse(f"retry later: {exc}", status_code=503, headers=retry_after_header(exc))
        return Response(status_code=202)

    @app.get("/api/sampling")
    def get_sampling(request: Request) -> Response:
        return sampling_response(sampling, request)

    return app


def _decode_and_write(writer: SpanWriter, body: bytes, binary_as_base64: bool, encoding: str,
                      limit: int) -> None:
    spans = decode_thrift_binary_batch(decompress(body, encoding, limit), binary_as_base64=binary_as_base64)
    if spans.num_rows:
        writer.write(spans)
