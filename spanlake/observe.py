"""Request IDs, structured logs and per-route latency for every HTTP listener.

Every request gets an ID (the caller's ``X-Request-ID`` when it is sane, else a new one), echoed in
the response's ``X-Request-ID`` and attached to every log record written while the request runs.
``--log-format json`` writes one JSON object per line with ``request_id`` and ``tenant``; the token
is never logged (only the tenant, and the token's name where auth refuses it).
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import sys
import time
from collections.abc import Callable
from contextvars import ContextVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from spanlake.selftrace import SelfTracer, http_span
from spanlake.tenancy import tenant_or_empty

request_id: ContextVar[str] = ContextVar("spanlake_request_id", default="")
_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")

# (listener, route template, status, seconds, tenant or "" when auth refused the request)
Observe = Callable[[str, str, int, float, str], None]

log = logging.getLogger("spanlake.access")


class RequestMiddleware:
    """Outermost middleware of an HTTP app: request ID, access log (debug), latency callback."""

    def __init__(self, app: ASGIApp, listener: str, observe: Observe | None = None,
                 tracer: SelfTracer | None = None) -> None:
        self.app = app
        self.listener = listener
        self.observe = observe
        self.tracer = tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        given = headers.get("x-request-id", "")
        rid = given if _SANE_ID.fullmatch(given) else secrets.token_hex(8)
        token = request_id.set(rid)
        status = 500
        started = time.perf_counter()
        started_ns = time.time_ns()
        # Never trace the self-trace export itself: each export would make a span to export.
        tracer = None if self.tracer is None or self.tracer.is_own_export(headers) else self.tracer

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            if self.observe is not None:
                tenant = str(scope.get("state", {}).get("tenant", ""))
                self.observe(self.listener, route, status, seconds, tenant)
            log.debug("%s %s %s -> %d in %.1f ms", self.listener, scope.get("method"), scope.get("path"),
                      status, seconds * 1000)
            if tracer is not None:
                tracer.record(http_span(self.listener, str(scope.get("method")), route,
                                        str(scope.get("path")), status, started_ns, time.time_ns(), rid,
                                        headers.get("traceparent", "")))
            request_id.reset(token)


def api_of(route: str) -> str:
    """Which API a query-port route belongs to (the ``api`` label of the latency metric)."""
    for prefix, api in (("/api/v3/", "jaeger_v3"), ("/api/metrics/", "spm"), ("/api/sql", "sql"),
                        ("/tempo", "tempo"), ("/zipkin", "zipkin"), ("/api/v2/", "zipkin"),
                        ("/api/", "jaeger_v1")):
        if route.startswith(prefix):
            return api
    return "ui" if route != "unmatched" else route


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        record.tenant = tenant_or_empty()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("request_id", "tenant"):
            value = getattr(record, key, "")
            if value:
                doc[key] = value
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc)


def configure_logging(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_ContextFilter())
    if fmt == "json":
        formatter: logging.Formatter = JsonFormatter()
        formatter.converter = time.gmtime
    else:
        formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):  # uvicorn's own records go through the same handler
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
