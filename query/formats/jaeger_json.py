"""Spans -> the Jaeger UI JSON trace model (``internal/uimodel``), following Jaeger's OTLP -> Jaeger mapping.

Pure: a ``SPAN_SCHEMA`` table in, JSON-ready dicts out. The mapping (collector-contrib
``pkg/translator/jaeger``):
- each distinct resource becomes a process ``p1..pN``, numbered in span order; ``service.name`` is the
  process's service and is left out of its tags;
- span tags are, in order: ``otel.scope.name``/``otel.scope.version``, the span attributes,
  ``span.kind``, ``otel.status_code``, ``error`` (bool, for status ERROR), ``otel.status_description``,
  ``w3c.tracestate``;
- the parent becomes the first ``CHILD_OF`` reference, links become ``FOLLOWS_FROM`` references (or
  ``CHILD_OF`` with ``opentracing.ref_type=child_of``); events become logs with an ``event`` field;
- times are microseconds; int64 values beyond 2^53 are decimal strings (JavaScript would round them);
  bytes are base64; arrays and maps are their JSON text.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pyarrow as pa

from spanlake.query.formats import columns
from spanlake.query.formats.columns import (
    attribute_tags,
    gc_paused,
    group_codes,
    hex_ids,
    ints,
    jaeger_trace_ids,
    list_offsets,
    rows_of,
)
from spanlake.query.ids import format_span_id, format_trace_id
from spanlake.storage.attributes import AttrRow, attr_as_string, attr_value
from spanlake.storage.schema import SPAN_KIND_NAMES, STATUS_ERROR, STATUS_OK, ValueType

Json = dict[str, Any]

NO_SERVICE_NAME = "OTLPResourceNoServiceName"  # the translator's name for a resource without one
WARNINGS_KEY = "@jaeger@warnings"  # where Jaeger keeps span warnings in OTLP (internal/jptrace/warning.go)
_JS_MAX_SAFE_INTEGER = 2**53 - 1
_STRING = int(ValueType.STRING)


def spans_to_jaeger_traces(spans: pa.Table) -> list[Json]:
    """One Jaeger UI trace per trace ID, in order of first appearance; spans keep their table order.

    Built a column at a time (``columns.py``): a 100,000-span trace is converted in a fraction of
    a second, where a dict per row took seconds. The fixed tags (``span.kind``, ``otel.status_code``,
    the scope's, ...) are made once per distinct combination and the same dicts appear in every span
    that has them: treat the result as read-only (it is only encoded)."""
    if spans.num_rows == 0:
        return []
    with gc_paused():
        cols = _Columns(spans)
        by_trace: dict[str, list[int]] = {}
        for i, trace_hex in enumerate(cols.trace_ids):
            by_trace.setdefault(trace_hex, []).append(i)
        return [_trace(cols, trace_hex, rows) for trace_hex, rows in by_trace.items()]


class _Columns:
    """The span table's columns as Python lists and numpy arrays, each converted in one pass."""

    def __init__(self, spans: pa.Table) -> None:
        self.spans = spans
        self.trace_ids = jaeger_trace_ids(spans["trace_id"])
        self.span_ids = hex_ids(spans["span_id"], 8)
        parents = hex_ids(spans["parent_span_id"], 8)
        self.parents = ["" if p == _ZERO_SPAN_ID else p for p in parents]  # "": no parent
        self.names: list[str] = spans["name"].to_pylist()
        starts = ints(spans["start_time_unix_nano"])
        self.starts: list[int] = (starts // 1000).tolist()
        ends = ints(spans["end_time_unix_nano"])
        self.durations: list[int] = (np.maximum(0, ends - starts) // 1000).tolist()
        self.flags: list[int] = (ints(spans["flags"]) & 0xFF).tolist()  # W3C trace flags: the rest is OTLP's
        self.kinds: list[str] = [SPAN_KIND_NAMES.get(k, "") for k in ints(spans["kind"]).tolist()]
        # The fixed tags around the attributes: one tuple per distinct combination, shared by its spans.
        scopes = spans["scope_name"].to_pylist(), spans["scope_version"].to_pylist()
        self.prefixes = shared(_prefix_tags, *scopes)
        self.suffixes = shared(_suffix_tags, self.kinds, ints(spans["status_code"]).tolist(),
                               spans["status_message"].to_pylist(), spans["trace_state"].to_pylist())
        self.tags, keys = attribute_tags(spans["span_attributes"])
        self.tag_offsets: list[int] = list_offsets(spans["span_attributes"]).tolist()
        self.warnings = self._warnings(keys)
        self.logs = self._logs()
        self.links = self._links()
        self.processes = group_codes(spans, "service_name", "resource_attributes").tolist()
        self.resources = self._resources()

    def _warnings(self, keys: list[str]) -> dict[int, tuple[list[int], list[str]]]:
        """Rows with a warnings attribute -> (tag positions to leave out, the warnings)."""
        if WARNINGS_KEY not in keys:
            return {}
        flat = columns.array(self.spans["span_attributes"]).flatten()
        at = [i for i, key in enumerate(keys) if key == WARNINGS_KEY]
        found: dict[int, tuple[list[int], list[str]]] = {}
        offsets = np.asarray(self.tag_offsets)
        for i, a in zip(at, flat.take(pa.array(at, pa.int64())).to_pylist(), strict=True):
            row = int(np.searchsorted(offsets, i, side="right")) - 1
            skip, texts = found.setdefault(row, ([], []))
            skip.append(i)
            texts.extend(_warnings(a))
        return found

    def _resources(self) -> dict[tuple[str, int], Json]:
        """(trace, resource code) -> its process, from the resource's first row in the trace (equal
        resources may still differ in how they print, e.g. -0.0 and 0.0); converted in one take."""
        first: dict[tuple[str, int], int] = {}
        for i, key in enumerate(zip(self.trace_ids, self.processes, strict=True)):
            first.setdefault(key, i)
        rows = rows_of(self.spans, ["service_name", "resource_attributes"], list(first.values()))
        return {code: _process(row) for code, row in zip(first, rows, strict=True)}

    def _logs(self) -> dict[int, list[Json]]:
        rows = np.flatnonzero(np.diff(list_offsets(self.spans["events"]))).tolist()
        return {i: [_log(e) for e in row["events"]]
                for i, row in zip(rows, rows_of(self.spans, ["events"], rows), strict=True)}

    def _links(self) -> dict[int, Json]:
        rows = np.flatnonzero(np.diff(list_offsets(self.spans["links"]))).tolist()
        found = rows_of(self.spans, ["trace_id", "parent_span_id", "links"], rows)
        return dict(zip(rows, found, strict=True))


_ZERO_SPAN_ID = "0" * 16


def shared(make: Callable[..., tuple[Json, ...]], *columns: list[Any]) -> list[tuple[Json, ...]]:
    """``make(*row)`` for each row of ``columns``, called once per distinct row."""
    made: dict[tuple[Any, ...], tuple[Json, ...]] = {}
    out = []
    for row in zip(*columns, strict=True):
        tags = made.get(row)
        if tags is None:
            tags = made[row] = make(*row)
        out.append(tags)
    return out


def _trace(cols: _Columns, trace_hex: str, rows: list[int]) -> Json:
    processes: dict[str, Json] = {}
    process_ids: dict[int, str] = {}  # resource code -> pN: identical processes share an ID
    spans = []
    for i in rows:
        code = cols.processes[i]
        process_id = process_ids.get(code)
        if process_id is None:
            process_id = process_ids[code] = f"p{len(process_ids) + 1}"
            processes[process_id] = cols.resources[trace_hex, code]
        spans.append(_span(cols, i, trace_hex, process_id))
    return {"traceID": trace_hex, "spans": spans, "processes": processes, "warnings": None}


def _process(row: Json) -> Json:
    resource: list[AttrRow] = row["resource_attributes"]
    has_name = any(a["key"] == "service.name" for a in resource)
    service = row["service_name"] or ("" if has_name else NO_SERVICE_NAME)
    return {"serviceName": service, "tags": [kv(a) for a in resource if a["key"] != "service.name"]}


def _span(cols: _Columns, i: int, trace_id: str, process_id: str) -> Json:
    warned = cols.warnings.get(i)
    first, last = cols.tag_offsets[i], cols.tag_offsets[i + 1]
    if warned is None:
        tags = [*cols.prefixes[i], *cols.tags[first:last], *cols.suffixes[i]]
    else:
        kept = (cols.tags[k] for k in range(first, last) if k not in warned[0])
        tags = [*cols.prefixes[i], *kept, *cols.suffixes[i]]
    flags = cols.flags[i]
    if flags:
        return {"traceID": trace_id, "spanID": cols.span_ids[i], "flags": flags,
                "operationName": cols.names[i], "references": _references(cols, i, trace_id),
                "startTime": cols.starts[i], "duration": cols.durations[i], "tags": tags,
                "logs": cols.logs.get(i, []), "processID": process_id,
                "warnings": warned[1] if warned else None}
    return {"traceID": trace_id, "spanID": cols.span_ids[i],
            "operationName": cols.names[i], "references": _references(cols, i, trace_id),
            "startTime": cols.starts[i], "duration": cols.durations[i], "tags": tags,
            "logs": cols.logs.get(i, []), "processID": process_id,
            "warnings": warned[1] if warned else None}


def _prefix_tags(scope_name: str, scope_version: str) -> tuple[Json, ...]:
    """The tags before a span's attributes: its instrumentation scope."""
    tags = []
    if scope_name:
        tags.append(_string_kv("otel.scope.name", scope_name))
    if scope_version:
        tags.append(_string_kv("otel.scope.version", scope_version))
    return tuple(tags)


def _suffix_tags(kind: str, status: int, status_message: str, trace_state: str) -> tuple[Json, ...]:
    """The tags after a span's attributes: kind, status and trace state."""
    tags = []
    if kind:
        tags.append(_string_kv("span.kind", kind))
    if status == STATUS_OK:
        tags.append(_string_kv("otel.status_code", "OK"))
    elif status == STATUS_ERROR:
        tags.append(_string_kv("otel.status_code", "ERROR"))
        tags.append({"key": "error", "type": "bool", "value": True})
    if status_message:
        tags.append(_string_kv("otel.status_description", status_message))
    if trace_state:
        tags.append(_string_kv("w3c.tracestate", trace_state))
    return tuple(tags)


def _references(cols: _Columns, i: int, trace_id: str) -> list[Json]:
    refs: list[Json] = []
    parent = cols.parents[i]
    if parent:
        refs.append(_ref("CHILD_OF", trace_id, parent))
    row = cols.links.get(i)
    if row is None:
        return refs
    for link in row["links"]:
        ref_type = _link_ref_type(link["attributes"])
        if refs and link["trace_id"] == row["trace_id"] and link["span_id"] == row["parent_span_id"]:
            refs[0]["refType"] = ref_type  # the link restates the parent: it may only change its type
            continue
        refs.append(_ref(ref_type, format_trace_id(link["trace_id"]), format_span_id(link["span_id"])))
    return refs


def _warnings(a: AttrRow) -> list[str]:
    value = attr_value(a)
    if isinstance(value, list):
        return [str(v) for v in value]
    return [attr_as_string(a)]


def _link_ref_type(attributes: Iterable[AttrRow]) -> str:
    for a in attributes:
        if a["key"] == "opentracing.ref_type" and attr_as_string(a) == "child_of":
            return "CHILD_OF"
    return "FOLLOWS_FROM"


def _ref(ref_type: str, trace_id: str, span_id: str) -> Json:
    return {"refType": ref_type, "traceID": trace_id, "spanID": span_id}


def _log(event: Json) -> Json:
    fields: list[Json] = []
    if event["name"] and not any(a["key"] == "event" for a in event["attributes"]):
        fields.append(_string_kv("event", event["name"]))
    fields.extend(kv(a) for a in event["attributes"])
    return {"timestamp": event["time_unix_nano"] // 1000, "fields": fields}


def _string_kv(key: str, value: str) -> Json:
    return {"key": key, "type": "string", "value": value}


def kv(a: AttrRow) -> Json:
    """One attribute as a Jaeger UI key/value with its Jaeger type."""
    t = a["type"]
    if t == _STRING:  # the common case first, without the enum comparisons below
        return {"key": a["key"], "type": "string", "value": a["str"]}
    if t == ValueType.BOOL:
        return {"key": a["key"], "type": "bool", "value": bool(a["bool"])}
    if t == ValueType.INT:
        value: int = a["int"]
        # JavaScript numbers lose precision past 2^53 (jaeger's jsMaxSafeInteger); send those as text.
        return {"key": a["key"], "type": "int64",
                "value": str(value) if abs(value) > _JS_MAX_SAFE_INTEGER else value}
    if t == ValueType.DOUBLE:
        number: float = a["double"]
        # JSON has no NaN or infinity; their Go text keeps the response parseable.
        return {"key": a["key"], "type": "float64",
                "value": number if math.isfinite(number) else attr_as_string(a)}
    if t == ValueType.BYTES:
        return {"key": a["key"], "type": "binary", "value": base64.b64encode(a["bytes"]).decode()}
    return _string_kv(a["key"], attr_as_string(a))
