"""OTLP/HTTP receiver: ``POST /v1/traces`` with protobuf or JSON bodies (OTLP spec, "OTLP/HTTP").

Responses follow the spec: success is an ``ExportTraceServiceResponse`` in the request's encoding
(with ``partialSuccess`` when spans were rejected); a bad request is 400 with a ``google.rpc.Status``
whose message says what is wrong; overload is 503 with ``Retry-After`` so exporters back off.
"""

from __future__ import annotations

import anyio
from fastapi import FastAPI, Request, Response
from google.protobuf import json_format
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from spanlake.collector.admission import Admission
from spanlake.collector.bodies import BadEncoding, BodyTooLarge, UnsupportedEncoding, decompress, read_capped
from spanlake.collector.formats.errors import FormatError, TooManySpans
from spanlake.collector.formats.otlp import decode_otlp_json, decode_otlp_protobuf
from spanlake.collector.formats.result import ConvertResult
from spanlake.collector.retry import retry_after_header, retryable_status
from spanlake.storage.api import SpanWriter, StoreOverloaded

PROTOBUF = "application/x-protobuf"
JSON = "application/json"


def make_app(writer: SpanWriter, max_request_bytes: int) -> FastAPI:
    app = FastAPI(title="spanlake OTLP/HTTP receiver", docs_url=None, redoc_url=None, openapi_url=None)
    gate = Admission.of(writer)

    @app.post("/v1/traces")
    async def export(request: Request) -> Response:
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media not in (PROTOBUF, JSON):
            return _error(JSON, 415, f"unsupported Content-Type {media!r}; use {PROTOBUF} or {JSON}")
        try:
            gate.precheck()  # refuse before reading and decoding: a refused request costs nothing
            body = await read_capped(request, max_request_bytes)
            encoding = request.headers.get("content-encoding", "")
            # Inflating, decoding and the durable write are all off the event loop.
            result = await anyio.to_thread.run_sync(_ingest, gate, media, body, encoding,
                                                    max_request_bytes)
        except BodyTooLarge as exc:
            return _error(media, 413, str(exc))
        except TooManySpans as exc:
            return _error(media, 413, str(exc))
        except UnsupportedEncoding as exc:
            return _error(media, 415, str(exc))
        except (FormatError, BadEncoding) as exc:
            return _error(media, 400, str(exc))
        except StoreOverloaded as exc:
            return _encode(media, 503, retryable_status(exc), retry_after_header(exc))
        return _success(media, result)

    return app


def _ingest(gate: Admission, media: str, body: bytes, encoding: str, limit: int) -> ConvertResult:
    raw = decompress(body, encoding, limit)
    if media == PROTOBUF:
        result = decode_otlp_protobuf(raw, max_spans=gate.limits.max_spans_per_request)
    else:
        result = decode_otlp_json(raw, max_spans=gate.limits.max_spans_per_request)
    return gate.admit(result)


def _success(media: str, result: ConvertResult) -> Response:
    reply = ExportTraceServiceResponse()
    if result.rejected:
        reply.partial_success.rejected_spans = result.rejected
        reply.partial_success.error_message = result.message
    return _encode(media, 200, reply)


def _error(media: str, code: int, message: str, headers: dict[str, str] | None = None) -> Response:
    # google.rpc.Code: 3 INVALID_ARGUMENT, 8 RESOURCE_EXHAUSTED, 14 UNAVAILABLE
    rpc_code = {400: 3, 413: 8, 415: 3, 503: 14}.get(code, 2)
    return _encode(media, code, status_pb2.Status(code=rpc_code, message=message), headers)


def _encode(media: str, code: int, message: object, headers: dict[str, str] | None = None) -> Response:
    if media == PROTOBUF:
        body = message.SerializeToString()  # type: ignore[attr-defined]
    else:
        body = json_format.MessageToJson(message, indent=None).encode()
    return Response(body, status_code=code, media_type=media, headers=headers)
