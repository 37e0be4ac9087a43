"""The query app on port 16686: every read API (Jaeger v1, api_v3, SPM, Tempo under ``/tempo``, Zipkin
v2 under ``/zipkin``) behind one FastAPI app.

The composition root passes in the reader and whatever the routers need from other roles (the
OTLP/JSON decoder for ``/api/transform``), plus extra routers such as the web UI's, so that this
package imports neither ``collector`` nor ``ui``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pyarrow as pa
from fastapi import APIRouter, FastAPI

from spanlake.query import apiv3, jaeger_api, spm, zipkin_api
from spanlake.query.tempo import api as tempo_api
from spanlake.storage.api import SpanReader
from spanlake.storage.traceql.engine import TraceQLEngine

ZIPKIN_PREFIX = "/zipkin"  # Zipkin's API and Lens's config, as Lens asks for them under its base path


def mount_zipkin_api(app: FastAPI, reader: SpanReader, autocomplete_keys: Sequence[str] = ()) -> None:
    """Zipkin's read API on another app (the Zipkin port's), at ``/api/v2`` as Grafana calls it and
    under ``/zipkin`` as Lens does."""
    router = zipkin_api.router(reader, autocomplete_keys)
    app.include_router(router)
    app.include_router(router, prefix=ZIPKIN_PREFIX)


def make_app(reader: SpanReader, decode_otlp_json: Callable[[bytes], pa.Table],
             extra_routers: Sequence[APIRouter] = (), zipkin_autocomplete_keys: Sequence[str] = (),
             traceql: TraceQLEngine | None = None) -> FastAPI:
    """``traceql`` (the TraceQL engine over the same reader) adds Tempo's API under ``/tempo``."""
    app = FastAPI(title="spanlake query API", docs_url="/api/docs", redoc_url=None,
                  openapi_url="/api/openapi.json")
    app.include_router(apiv3.router(reader))
    app.include_router(jaeger_api.router(reader, decode_otlp_json))
    app.include_router(spm.router(reader))
    app.include_router(zipkin_api.router(reader, zipkin_autocomplete_keys), prefix=ZIPKIN_PREFIX)
    if traceql is not None:
        app.include_router(tempo_api.router(reader, traceql))
    for extra in extra_routers:
        app.include_router(extra)
    return app

