"""What every ingest converter returns: the spans it kept and an account of those it dropped."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa


@dataclass
class ConvertResult:
    """Converted spans (``SPAN_SCHEMA``) plus the partial-success report.

    ``rejected`` counts spans dropped for invalid IDs while the rest of the request was kept; ``message``
    says why, for OTLP's ``partial_success.error_message`` ("" when nothing was dropped).
    """

    spans: pa.Table
    rejected: int = 0
    message: str = ""
