"""Starlette's TestClient, imported without failing the run on its httpx -> httpx2 nag (pytest turns
warnings into errors, and the nag is a UserWarning about the test client itself, not our code)."""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)
    from fastapi.testclient import TestClient

__all__ = ["TestClient"]
