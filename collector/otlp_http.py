"""OTLP/HTTP receiver: ``POST /v1/traces`` with protobuf or JSON bodies (OTLP spec, "OTLP/HTTP").

Responses follow the spec: success is an ``ExportTraceServiceResponse`` in the request's encoding
(with ``partialSuccess`` when spans were rejected); a bad request is 400 with a ``google.rpc.Status``
whose message says what is wrong; overload is 503 with ``Retry-After`` so exporters back off.
"""

from __future__ import annotations

from fastapi import FastAPI, Request, Response
from google.protobuf import json_format
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from spanlake.collector.admission import Admission
from spanlake.collector.formats.otlp import decode_otlp_json, decode_otlp_protobuf
from spanlake.collector.formats.result import ConvertResult
from spanlake.collector.http_ingest import Refusal, ingest, media_type
from spanlake.collector.retry import retryable_status
from spanlake.storage.api import SpanWriter

PROTOBUF = "application/x-protobuf"
JSON = "application/json"


def make_app(writer: SpanWriter, max_request_bytes: int) -> FastAPI:
    app = FastAPI(title="spanlake OTLP/HTTP receiver", docs_url=None, redoc_url=None, openapi_url=None)
    gate = Admission.of(writer)

    @app.post("/v1/traces")
    async def export(request: Request) -> Response:
        media = media_type(request)
        if media not in (PROTOBUF, JSON):
            return _error(JSON, 415, f"unsupported Content-Type {media!r}; use {PROTOBUF} or {JSON}")
        outcome = await ingest(request, gate, max_request_bytes, lambda raw: _decode(gate, media, raw))
        if isinstance(outcome, Refusal):
            return _refused(media, outcome)
        return _success(media, outcome)

    return app


def _decode(gate: Admission, media: str, raw: bytes) -> ConvertResult:
    decode = decode_otlp_protobuf if media == PROTOBUF else decode_otlp_json
    return gate.admit(decode(raw, max_spans=gate.limits.max_spans_per_request))


def _refused(media: str, refusal: Refusal) -> Response:
    if refusal.overload is not None:  # retryable: the Status carries RetryInfo, as exporters expect
        return _encode(media, refusal.status, retryable_status(refusal.overload), refusal.headers)
    return _error(media, refusal.status, refusal.message, refusal.headers)


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
