"""The query app on port 16686: every read API (Jaeger v1, api_v3, SPM, Tempo) behind one FastAPI app.

The composition root passes in the reader and whatever the routers need from other roles (the
OTLP/JSON decoder for ``/api/transform``), plus extra routers such as the web UI's, so that this
package imports neither ``collector`` nor ``ui``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pyarrow as pa
from fastapi import APIRouter, FastAPI

from spanlake.query import apiv3, jaeger_api, spm
from spanlake.query.tempo import api as tempo_api
from spanlake.storage.api import SpanReader
from spanlake.storage.traceql.engine import TraceQLEngine


def make_app(reader: SpanReader, decode_otlp_json: Callable[[bytes], pa.Table],
             extra_routers: Sequence[APIRouter] = (), traceql: TraceQLEngine | None = None) -> FastAPI:
    """``traceql`` (the TraceQL engine over the same store) adds Tempo's API under ``/tempo``."""
    app = FastAPI(title="spanlake query API", docs_url="/api/docs", redoc_url=None,
                  openapi_url="/api/openapi.json")
    app.include_router(apiv3.router(reader))
    app.include_router(jaeger_api.router(reader, decode_otlp_json))
    app.include_router(spm.router(reader))
    if traceql is not None:
        app.include_router(tempo_api.router(reader, traceql))
    for extra in extra_routers:
        app.include_router(extra)
    return app
