"""The admin port (14269, Jaeger's): health for probes and load balancers, Prometheus metrics.

- ``GET /health/live``: 200 while the process serves at all (a liveness probe restarts it on failure).
- ``GET /health/ready``: 200 once the WAL is replayed and every listener is up, 503 before that and
  while shutting down (a readiness probe keeps traffic away meanwhile).
- ``GET /``: Jaeger's admin health answer (``{"status": "Server available", ...}``, 200/503), where
  Jaeger's tooling and Helm charts look for it.
- ``GET /metrics``: Prometheus text format (needs the ``admin`` right when auth is on).

The health routes answer without credentials: probes (kubelet, load balancers) cannot hold a token,
and they disclose only up/ready. See docs/security.md.
"""

from __future__ import annotations

import datetime as dt
import threading
import time

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from spanlake.metrics import Metrics

HEALTH_ROUTES = ("/", "/health/live", "/health/ready")


class Health:
    """What readiness depends on; set by ``serve`` as it starts and stops."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.wal_replayed = False
        self.listeners_up = False
        self.stopping = False
        self.started_at = time.time()
        self.ready_at: float | None = None

    def mark(self, **flags: bool) -> None:
        with self._lock:
            for name, value in flags.items():
                setattr(self, name, value)
            if self.ready and self.ready_at is None:
                self.ready_at = time.time()

    @property
    def ready(self) -> bool:
        return self.wal_replayed and self.listeners_up and not self.stopping

    def waiting_for(self) -> list[str]:
        return [what for what, done in (("wal replay", self.wal_replayed),
                                        ("listeners", self.listeners_up),
                                        ("not stopping", not self.stopping)) if not done]


def admin_right(method: str, path: str) -> str | None:
    return None if path in HEALTH_ROUTES else "admin"


def make_app(health: Health, metrics: Metrics) -> FastAPI:
    app = FastAPI(title="spanlake admin", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/health/live")
    def live() -> JSONResponse:
        return JSONResponse({"status": "alive"})

    @app.get("/health/ready")
    def ready() -> JSONResponse:
        if health.ready:
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "not ready", "waiting_for": health.waiting_for()}, status_code=503)

    @app.get("/")
    def jaeger_health() -> JSONResponse:
        if not health.ready:
            return JSONResponse({"status": "Server not available", "upSince": "0001-01-01T00:00:00Z"},
                                status_code=503)
        since = health.ready_at or health.started_at
        up = dt.datetime.fromtimestamp(since, dt.UTC).isoformat().replace("+00:00", "Z")
        return JSONResponse({"status": "Server available", "upSince": up,
                             "uptime": f"{time.time() - since:.3f}s"})

    @app.get("/metrics")
    def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
