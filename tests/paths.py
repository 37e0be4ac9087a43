"""Where tests find things. Upstream fixtures live in tests/fixtures (provenance in its README)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
JAEGER_SUITE = FIXTURES / "jaeger" / "storage-integration"
ZIPKIN_LENS = FIXTURES / "zipkin-lens"
TEMPO_PROTO = FIXTURES / "tempo" / "apache2-pkg-tempopb" / "tempo.proto"
