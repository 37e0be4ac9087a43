"""One exception-to-response mapping for every query API.

Handlers raise; they never build error responses. Which status an exception means is decided here,
once (``classify``). How the error looks on the wire is the API family's own (Jaeger's v1 envelope,
api_v3's ``{"error": {"httpCode"...}}``, the SQL API's ``{"error"}``, Tempo's and Zipkin's plain text):
each router passes its ``ErrorShape`` to ``guarded_routes``, and every route of that router answers
its errors through it. A failure nobody anticipated (a storage error) is logged with its traceback
and answered 500 in the family's shape, so no exception escapes to the server's generic handler.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from spanlake.query.ids import TraceIDError
from spanlake.query.limits import QueryLimitExceeded
from spanlake.query.params import ParamError
from spanlake.storage.location import StorageUnavailable
from spanlake.storage.sql import SqlBusy, SqlError, SqlTimeout
from spanlake.storage.traceql.errors import TOO_DEEP, TraceQLError

log = logging.getLogger(__name__)

RETRY_AFTER_S = 1
# An unreachable object store is seldom back within a second; the WAL holds new spans meanwhile.
STORE_RETRY_AFTER_S = 5


class QueryError(Exception):
    """An answer other than 200 that a handler decided on: ``status`` and a message for the caller."""

    status = 500

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class BadRequest(QueryError):
    status = 400


class NotFound(QueryError):
    status = 404


class PayloadTooLarge(QueryError):
    """A request body over its cap (read in chunks and refused before it is parsed)."""

    status = 413


@dataclass(frozen=True)
class ApiError:
    """What went wrong, independent of any wire format."""

    status: int
    message: str
    headers: dict[str, str] = field(default_factory=dict)
    # Family-specific extra fields, e.g. the SQL API's ``"timeout": true``.
    extra: dict[str, Any] = field(default_factory=dict)


ErrorShape = Callable[[ApiError], Response]


def classify(exc: Exception, request: Request) -> ApiError:
    """The one table from exception to status."""
    if isinstance(exc, QueryError):
        return ApiError(exc.status, exc.message)
    if isinstance(exc, ParamError | TraceIDError):
        return ApiError(400, str(exc))
    if isinstance(exc, TraceQLError):  # syntax (with line and column), type or unsupported construct
        return ApiError(400, exc.message)
    if isinstance(exc, RecursionError):  # a query that parsed but nests too deeply to compile
        return ApiError(400, TOO_DEEP)
    if isinstance(exc, QueryLimitExceeded):
        # 400 as Tempo's "range specified by start and end exceeds ...": the same request fails again.
        return ApiError(400, str(exc))
    if isinstance(exc, RequestValidationError):
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}"
                             for e in exc.errors())
        return ApiError(400, f"invalid request: {problems}")
    if isinstance(exc, SqlBusy):
        return ApiError(503, exc.message, headers={"Retry-After": str(RETRY_AFTER_S)})
    if isinstance(exc, StorageUnavailable):  # the object store is away: retryable, and said so
        return ApiError(503, f"the span store is unavailable: {exc}",
                        headers={"Retry-After": str(STORE_RETRY_AFTER_S)})
    if isinstance(exc, SqlTimeout):
        # 400, not 408: browsers and proxies resend on 408, which would run the heavy query again.
        return ApiError(400, exc.message, extra={"timeout": True})
    if isinstance(exc, SqlError):
        return ApiError(400, exc.message)
    log.error("query failed: %s %s", request.method, request.url.path, exc_info=exc)
    return ApiError(500, f"internal error: {exc}")


def guarded_routes(shape: ErrorShape) -> type[APIRoute]:
    """A route class for ``APIRouter(route_class=...)``: every route answers errors through ``shape``."""

    class GuardedRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def guarded(request: Request) -> Response:
                try:
                    return await handler(request)
                except Exception as exc:  # every exception is mapped; see the module docstring
                    return shape(classify(exc, request))

            return guarded

    return GuardedRoute
