"""Where tests find things. Upstream fixtures are read in place from ../shared/fixtures, never copied."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO.parent / "shared" / "fixtures"
JAEGER_SUITE = FIXTURES / "jaeger" / "storage-integration"
