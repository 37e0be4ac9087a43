"""The query app on port 16686: every read API (Jaeger v1, api_v3, SPM) behind one FastAPI app.

The composition root passes in the reader and whatever the routers need from other roles (the
OTLP/JSON decoder for ``/api/transform``), plus extra routers such as the web UI's, so that this
package imports neither ``collector`` nor ``ui``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pyarrow as pa
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from spanlake.query import apiv3, jaeger_api, spm
from spanlake.storage.api import SpanReader
from spanlake.storage.location import StorageUnavailable


def make_app(reader: SpanReader, decode_otlp_json: Callable[[bytes], pa.Table],
             extra_routers: Sequence[APIRouter] = ()) -> FastAPI:
    app = FastAPI(title="spanlake query API", docs_url="/api/docs", redoc_url=None,
                  openapi_url="/api/openapi.json")
    app.include_router(apiv3.router(reader))
    app.include_router(jaeger_api.router(reader, decode_otlp_json))
    app.include_router(spm.router(reader))
    for extra in extra_routers:
        app.include_router(extra)
    app.add_exception_handler(StorageUnavailable, _storage_unavailable)
    return app


async def _storage_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """The object store is unreachable: a retryable 503 that says so, in Jaeger's error shape."""
    message = f"the span store is unavailable: {exc}"
    return JSONResponse({"data": None, "total": 0, "limit": 0, "offset": 0,
                         "errors": [{"code": 503, "msg": message}]},
                        status_code=503, headers={"Retry-After": "5"})
