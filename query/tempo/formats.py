"""Tempo's JSON and protobuf response shapes (``pkg/tempopb/tempo.proto``), built from engine results.

Field names are jsonpb's camelCase of the proto fields; 64-bit integers are strings, 32-bit ones
numbers; nothing outside the proto is written, since Grafana decodes search and instant-query
responses strictly (unknown fields are an error).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from spanlake.query.formats.otlp import spans_to_otlp_json, spans_to_otlp_request
from spanlake.storage.attributes import any_value_to_json
from spanlake.storage.traceql.engine import MatchedTrace, TraceSummary
from spanlake.storage.traceql.metrics import Series

Json = dict[str, Any]
ROOT_NOT_RECEIVED = "<root span not yet received>"


# --- trace by ID --------------------------------------------------------------------------------
def trace_pb(spans: pa.Table) -> bytes:
    """``tempopb.Trace`` bytes: wire-identical to OTLP ``TracesData`` (field 1, resourceSpans).

    Grafana dereferences every resource and scope without nil checks and drops a resource with no
    attributes, so both are always present and a resource has at least ``service.name``.
    """
    request = spans_to_otlp_request(spans)
    for rs in request.resource_spans:
        rs.resource.SetInParent()
        if not any(kv.key == "service.name" for kv in rs.resource.attributes):
            rs.resource.attributes.append(KeyValue(key="service.name",
                                                   value=AnyValue(string_value="unknown_service")))
        for ss in rs.scope_spans:
            ss.scope.SetInParent()
    return bytes(request.SerializeToString())


def trace_by_id_pb(spans: pa.Table, message: str = "") -> bytes:
    """``tempopb.TraceByIDResponse``: trace (1), status (3, PARTIAL=1) and message (4)."""
    body = _field_bytes(1, trace_pb(spans))
    if message:
        body += bytes([3 << 3, 1]) + _field_bytes(4, message.encode())
    return body


def trace_by_id_json(spans: pa.Table, message: str = "") -> Json:
    out: Json = {"trace": spans_to_otlp_json(spans)}
    if message:
        out.update(status="PARTIAL", message=message)
    return out


def trace_v1_json(spans: pa.Table) -> Json:
    return {"batches": spans_to_otlp_json(spans)["resourceSpans"]}


def truncate(spans: pa.Table, max_spans: int) -> tuple[pa.Table, str]:
    """At most ``max_spans`` spans (the earliest), and the PARTIAL message when some were cut."""
    if spans.num_rows <= max_spans:
        return spans, ""
    order = pc.sort_indices(spans, [("start_time_unix_nano", "ascending")])
    kept = spans.take(order[:max_spans])
    return kept, (f"trace exceeds the maximum of {max_spans} spans per response: showing the first "
                  f"{max_spans} of {spans.num_rows}")


def _field_bytes(number: int, payload: bytes) -> bytes:
    return bytes([(number << 3) | 2]) + _varint(len(payload)) + payload


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


# --- search -------------------------------------------------------------------------------------
def search_json(matches: list[MatchedTrace], summaries: dict[bytes, TraceSummary], spss: int,
                inspected_traces: int) -> Json:
    traces = [_trace_meta(t, summaries.get(t.trace_id), spss) for t in matches]
    traces.sort(key=lambda t: int(t["startTimeUnixNano"]), reverse=True)
    return {"traces": traces, "metrics": {"inspectedTraces": inspected_traces, "completedJobs": 1,
                                          "totalJobs": 1}}


def _trace_meta(match: MatchedTrace, summary: TraceSummary | None, spss: int) -> Json:
    start = summary.start_ns if summary else min(r["start_time_unix_nano"] for r in match.rows)
    end = summary.end_ns if summary else start
    meta: Json = {
        "traceID": match.trace_id.hex(),
        "rootServiceName": (summary.root_service if summary and summary.root_name else ROOT_NOT_RECEIVED),
        "rootTraceName": summary.root_name if summary and summary.root_name else "",
        "startTimeUnixNano": str(start),
        "durationMs": max(0, (end - start) // 1_000_000),
        "spanSets": [_spanset(match, s.spans, s.labels + s.scalars, spss) for s in match.spansets],
    }
    if summary:
        meta["serviceStats"] = {svc: {"spanCount": n, "errorCount": e}
                                for svc, (n, e) in sorted(summary.services.items())}
    return meta


def _spanset(match: MatchedTrace, spans: frozenset[int], labels: tuple[tuple[str, Any], ...],
             spss: int) -> Json:
    rows = sorted((match.rows[n] for n in spans), key=lambda r: r["start_time_unix_nano"])
    return {
        "spans": [_span(match, r) for r in rows[:max(0, spss)]],
        "matched": len(spans),
        "attributes": [key_value(k, v) for k, v in labels if v is not None],
    }


def _span(match: MatchedTrace, row: Json) -> Json:
    attributes = []
    for n, spec in enumerate(match.values):
        value = row.get(f"v{n}")
        if value is not None:
            attributes.append(key_value(spec.key, value))
    return {"spanID": bytes(row["span_id"]).hex(), "name": row["name"],
            "startTimeUnixNano": str(row["start_time_unix_nano"]),
            "durationNanos": str(row["duration_nano"]), "attributes": attributes}


def key_value(key: str, value: Any) -> Json:
    return {"key": key, "value": any_value_to_json(value)}


# --- tags ---------------------------------------------------------------------------------------
def tags_v2_json(scopes: dict[str, list[str]]) -> Json:
    return {"scopes": [{"name": name, "tags": tags} for name, tags in scopes.items()]}


def tag_values_v2_json(values: list[tuple[str, Any]]) -> Json:
    return {"tagValues": [{"type": t, "value": _text(v)} for t, v in values]}


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --- metrics ------------------------------------------------------------------------------------
def query_range_json(series: list[Series], partial: str = "") -> Json:
    body: Json = {"series": [{
        "labels": [key_value(k, v) for k, v in s.labels],
        "samples": [{"timestampMs": str(ts), "value": v} for ts, v in sorted(s.samples.items())],
        "exemplars": [{"labels": [key_value("trace:id", trace_id)], "value": value,
                       "timestampMs": str(ts)} for trace_id, ts, value in s.exemplars],
    } for s in series], "metrics": {"completedJobs": 1, "totalJobs": 1}}
    return _with_status(body, partial)


def query_instant_json(series: list[Series], partial: str = "") -> Json:
    body: Json = {"series": [{
        "labels": [key_value(k, v) for k, v in s.labels],
        "value": next(iter(s.samples.values()), 0.0),
    } for s in series], "metrics": {"completedJobs": 1, "totalJobs": 1}}
    return _with_status(body, partial)


def _with_status(body: Json, partial: str) -> Json:
    """``status`` PARTIAL and ``message`` when the result is incomplete (both in tempo.proto)."""
    body["status"] = "PARTIAL" if partial else "COMPLETE"
    if partial:
        body["message"] = partial
    return body
