"""Zipkin test traces: the zipkin-lens fixtures (real captured traces), moved in time when needed."""

from __future__ import annotations

import copy
import json
from typing import Any

from tests.paths import ZIPKIN_LENS

Span = dict[str, Any]
LENS_FILES = sorted(p.name for p in ZIPKIN_LENS.glob("*.json"))


def lens_trace(name: str) -> list[Span]:
    spans: list[Span] = json.loads((ZIPKIN_LENS / name).read_text())
    return spans


def shifted(spans: list[Span], latest_us: int) -> list[Span]:
    """A copy whose latest span timestamp is ``latest_us``, every timestamp moved by the same amount,
    so that searches with Zipkin's default lookback (one day) find a trace captured years ago."""
    stamps = [s["timestamp"] for s in spans if "timestamp" in s]
    delta = latest_us - max(stamps)
    out = copy.deepcopy(spans)
    for span in out:
        if "timestamp" in span:
            span["timestamp"] += delta
        for annotation in span.get("annotations", []):
            annotation["timestamp"] += delta
    return out


def normalized(span: Span) -> Span:
    """A sent span as Zipkin itself returns it: IDs left-padded to 16 (or 32) hex characters, a
    ``shared`` flag dropped from a client span (zipkin2 ``Span.Builder.build``)."""
    out = dict(span)
    out["traceId"] = _pad_trace_id(span["traceId"])
    out["id"] = span["id"].rjust(16, "0")
    if "parentId" in span:
        out["parentId"] = span["parentId"].rjust(16, "0")
    if span.get("kind") == "CLIENT":
        out.pop("shared", None)
    out["name"] = span.get("name", "").lower()
    if not out["name"]:
        del out["name"]
    return out


def _pad_trace_id(text: str) -> str:
    padded = text.rjust(32, "0")
    return padded[16:] if padded.startswith("0" * 16) else padded
