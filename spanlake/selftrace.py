"""``--self-trace``: spanlake's own request spans, sent through its own OTLP/HTTP receiver.

Each request a listener serves becomes one SERVER span of service ``spanlake`` (continuing
the caller's W3C ``traceparent`` when there is one). Once a second the spans go, as one OTLP
protobuf request, into the OTLP/HTTP app itself, called in-process over ASGI: the same middleware,
auth, decoding and durable write as any client's request, with no socket, TLS or port in the way.
Those export requests carry a per-process marker that the request middleware recognises, so
spanlake never traces its own ingest of them (which would grow without end). With auth on, they
use a token made at start for this alone (``ingest`` right, the default tenant).

HTTP requests and gRPC calls are traced alike (gRPC calls through the auth interceptor). At most
``_MAX_PENDING`` spans wait for an export: beyond that new ones are dropped, so a stuck export cannot
grow memory.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
import threading
from collections import deque
from dataclasses import dataclass

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from starlette.types import ASGIApp, Message

SERVICE = "spanlake"
MARKER_HEADER = "x-spanlake-self-trace"
_MAX_PENDING = 10_000
_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RequestSpan:
    """One served request, as a SERVER span."""

    name: str
    start_ns: int
    end_ns: int
    error: bool
    traceparent: str  # the caller's W3C traceparent, or ""
    attributes: tuple[tuple[str, str | int], ...]


def http_span(listener: str, method: str, route: str, path: str, status: int, start_ns: int, end_ns: int,
              request_id: str, traceparent: str) -> RequestSpan:
    """Named and described as OpenTelemetry's HTTP server conventions say."""
    return RequestSpan(f"{method} {route}", start_ns, end_ns, status >= 500, traceparent, (
        ("http.request.method", method), ("http.route", route), ("url.path", path),
        ("http.response.status_code", status), ("spanlake.listener", listener),
        ("spanlake.request_id", request_id)))


# gRPC codes OpenTelemetry's RPC conventions count as server errors.
_GRPC_SERVER_ERRORS = {2, 4, 12, 13, 14, 15}


def grpc_span(listener: str, method: str, code: int, start_ns: int, end_ns: int,
              traceparent: str) -> RequestSpan:
    """Named and described as OpenTelemetry's RPC conventions say (``package.Service/Method``)."""
    service, _, name = method.strip("/").partition("/")
    return RequestSpan(method.strip("/"), start_ns, end_ns, code in _GRPC_SERVER_ERRORS, traceparent, (
        ("rpc.system", "grpc"), ("rpc.service", service), ("rpc.method", name),
        ("rpc.grpc.status_code", code), ("spanlake.listener", listener)))


class SelfTracer:
    def __init__(self) -> None:
        self.marker = secrets.token_hex(16)  # never leaves the process
        self.token = "self-trace-" + secrets.token_urlsafe(32)
        self._pending: deque[RequestSpan] = deque()
        self._lock = threading.Lock()
        self.dropped = 0

    def is_own_export(self, headers: dict[str, str]) -> bool:
        return secrets.compare_digest(headers.get(MARKER_HEADER, ""), self.marker)

    def record(self, span: RequestSpan) -> None:
        with self._lock:
            if len(self._pending) >= _MAX_PENDING:
                self.dropped += 1
                return
            self._pending.append(span)

    def drain(self) -> list[RequestSpan]:
        with self._lock:
            spans = list(self._pending)
            self._pending.clear()
        return spans

    async def run(self, otlp_app: ASGIApp, interval_s: float = 1.0) -> None:
        """Export what was recorded every ``interval_s`` until cancelled (then once more)."""
        try:
            while True:
                await asyncio.sleep(interval_s)
                await self.export(otlp_app)
        finally:
            await self.export(otlp_app)

    async def export(self, otlp_app: ASGIApp) -> int:
        """Send the pending spans through ``otlp_app``; returns the HTTP status (0: nothing to send)."""
        spans = self.drain()
        if not spans:
            return 0
        body = to_otlp(spans).SerializeToString()
        headers = [(b"content-type", b"application/x-protobuf"),
                   (MARKER_HEADER.encode(), self.marker.encode()),
                   (b"authorization", f"Bearer {self.token}".encode())]
        status = await _post(otlp_app, "/v1/traces", body, headers)
        if status != 200:
            log.warning("self-trace export of %d spans answered %d; dropped", len(spans), status)
        return status


def to_otlp(spans: list[RequestSpan]) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value=SERVICE)))
    scope = rs.scope_spans.add()
    scope.scope.name = "spanlake.selftrace"
    for s in spans:
        parent = _TRACEPARENT.fullmatch(s.traceparent.strip().lower())
        span = scope.spans.add(
            trace_id=bytes.fromhex(parent.group(1)) if parent else os.urandom(16),
            span_id=os.urandom(8), name=s.name, kind=Span.SPAN_KIND_SERVER,
            start_time_unix_nano=s.start_ns, end_time_unix_nano=s.end_ns)
        if parent:
            span.parent_span_id = bytes.fromhex(parent.group(2))
        if s.error:
            span.status.code = Status.STATUS_CODE_ERROR
        for key, value in s.attributes:
            any_value = AnyValue(int_value=value) if isinstance(value, int) else AnyValue(string_value=value)
            span.attributes.append(KeyValue(key=key, value=any_value))
    return req


async def _post(app: ASGIApp, path: str, body: bytes, headers: list[tuple[bytes, bytes]]) -> int:
    """One POST to an ASGI app in this process; returns the response status."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"",
             "headers": [*headers, (b"content-length", str(len(body)).encode())],
             "client": ("127.0.0.1", 0), "server": ("127.0.0.1", 0)}
    sent = False
    status = 0

    async def receive() -> Message:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)  # nothing more will come; the app stops waiting first
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])

    await app(scope, receive, send)
    return status
