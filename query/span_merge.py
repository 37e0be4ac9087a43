"""Several rows for one span: exact duplicates, and Zipkin spans reported in pieces.

Both are query-time fix-ups (``adjusters.py``) because the pieces may arrive in different requests,
hours apart, and are stored as they came.

- An exact duplicate (the same span reported twice, e.g. a retried batch) is returned once, as
  Jaeger's ``DeduplicateSpans`` adjuster does. Rows that differ in anything are all kept.
- Zipkin spans sent in parts (one report with the name and endpoint, a later one with the timestamp
  and duration) are merged the way Zipkin merges them (``zipkin2.internal.Trace.merge`` and
  ``Span.Builder.merge``): same trace and span ID, same ``shared`` flag, endpoints that do not
  contradict each other. Unlike Zipkin, rows that both carry a different start (or duration, kind,
  name) are not parts but different spans and are never merged: Zipkin would fold several shared
  server spans under one client ID into one, losing all but the first start. And a fragment without
  kind cannot say whether it belongs to the client or the (shared) server side, so it merges with
  whichever side its endpoint matches; Zipkin would leave it alone, an extra span at 1970.
  Only rows that came from Zipkin are merged: OTLP and Jaeger spans with one ID are different
  spans, and Jaeger keeps them apart.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from spanlake.storage.schema import (
    EMPTY_SERVICE_NAME,
    MISSING_SERVICE_NAME,
    SPAN_KIND_BY_NAME,
    STATUS_ERROR,
    ZIPKIN_NO_DURATION,
    ZIPKIN_NO_TIMESTAMP,
    ZIPKIN_ORIGIN,
    ZIPKIN_SHARED,
)

Row = dict[str, Any]
_CLIENT = SPAN_KIND_BY_NAME["client"]
_NO_SERVICE = ("", MISSING_SERVICE_NAME, EMPTY_SERVICE_NAME)


def deduplicate_exact_spans(spans: pa.Table) -> pa.Table:
    """Each exactly repeated row once (the first)."""
    repeated = repeated_rows(spans)
    if not repeated:
        return spans
    rows = spans.take(pa.array(repeated)).to_pylist()
    drop: list[int] = []
    seen: dict[tuple[bytes, bytes], list[Row]] = {}
    for index, row in zip(repeated, rows, strict=True):
        kept = seen.setdefault((row["trace_id"], row["span_id"]), [])
        if row in kept:
            drop.append(index)
        else:
            kept.append(row)
    return _without(spans, drop) if drop else spans


def merge_zipkin_fragments(spans: pa.Table) -> pa.Table:
    """Zipkin span parts merged into one row per span side (see the module docstring)."""
    repeated = [i for i in repeated_rows(spans) if spans["flags"][i].as_py() & ZIPKIN_ORIGIN]
    if not repeated:
        return spans
    groups: dict[tuple[bytes, bytes], list[Row]] = {}
    for row in spans.take(pa.array(repeated)).to_pylist():
        groups.setdefault((row["trace_id"], row["span_id"]), []).append(row)
    merged = [side for rows in groups.values() for side in _merge_group(rows)]
    if len(merged) == len(repeated):
        return spans
    rest = _without(spans, repeated)
    return pa.concat_tables([rest, pa.Table.from_pylist(merged, schema=spans.schema)])


def repeated_rows(spans: pa.Table) -> list[int]:
    """Indexes of rows whose (trace ID, span ID) occurs more than once, in order (vectorised: this
    runs on every trace read, and repeats are rare)."""
    if spans.num_rows < 2:
        return []
    keys = np.hstack([_words(spans["trace_id"], 16), _words(spans["span_id"], 8)])
    order = np.lexsort(keys.T[::-1])
    ordered = keys[order]
    same = np.all(ordered[1:] == ordered[:-1], axis=1)  # row k equals row k+1
    repeated = np.zeros(len(keys), dtype=bool)
    repeated[1:] |= same
    repeated[:-1] |= same
    return sorted(int(i) for i in order[repeated])


def _words(column: pa.ChunkedArray, width: int) -> npt.NDArray[np.uint64]:
    """A non-null fixed-size binary column as rows of 64-bit words (a view of its data buffer)."""
    array = column.combine_chunks()
    data = np.frombuffer(array.buffers()[1], dtype=np.uint8)
    start = array.offset * width
    return data[start:start + len(array) * width].view(np.uint64).reshape(len(array), width // 8)


def _without(spans: pa.Table, rows: list[int]) -> pa.Table:
    keep = sorted(set(range(spans.num_rows)) - set(rows))
    return spans.take(pa.array(keep, pa.int64()))


def _merge_group(rows: list[Row]) -> list[Row]:
    sides: list[Row] = []
    for row in sorted(rows, key=_cleanup_order):
        for i, side in enumerate(sides):
            if _same_side(side, row):
                sides[i] = _merge(side, row)
                break
        else:
            sides.append(row)
    return sides


def _cleanup_order(row: Row) -> tuple[int, int, int, tuple[str, ...]]:
    """Zipkin's ``CLEANUP_COMPARATOR``: unshared first, clients first, null endpoints first."""
    endpoint = _local_endpoint(row)
    return (_shared(row), 0 if row["kind"] == _CLIENT else 1, 1 if any(endpoint) else 0,
            tuple(str(v or "") for v in endpoint))


def _same_side(left: Row, right: Row) -> bool:
    if _shared(left) != _shared(right) and left["kind"] and right["kind"]:
        return False
    # Parts of one span complement each other. Two rows that both carry a different start, duration,
    # kind or name are two spans that share an ID (several shared servers under one client ID, each
    # with its own start): they stay apart, for the shared-ID adjuster to tell them apart.
    for a, b in ((_sent_start(left), _sent_start(right)), (_sent_duration(left), _sent_duration(right)),
                 (left["kind"], right["kind"]), (left["name"], right["name"])):
        if a and b and a != b:
            return False
    # Zipkin's EndpointTracker: parts agree when no field set on both differs.
    return all(a is None or b is None or a == b
               for a, b in zip(_local_endpoint(left), _local_endpoint(right), strict=True))


def _sent_start(row: Row) -> int:
    """The start the span was reported with; 0 when it had none (then it came from annotations)."""
    return 0 if row["flags"] & ZIPKIN_NO_TIMESTAMP else int(row["start_time_unix_nano"])


def _sent_duration(row: Row) -> int:
    return 0 if row["flags"] & ZIPKIN_NO_DURATION else int(row["duration_nano"])


def _shared(row: Row) -> int:
    return 1 if row["flags"] & ZIPKIN_SHARED else 0


def _local_endpoint(row: Row) -> tuple[Any, Any, Any]:
    attrs = {a["key"]: a for a in row["resource_attributes"]}
    service = attrs.get("service.name", {}).get("str")
    ip = attrs.get("net.host.ip", {}).get("str")
    port = attrs.get("net.host.port", {}).get("int")
    return (None if service in _NO_SERVICE else service), ip, port


def _merge(left: Row, right: Row) -> Row:
    """``Span.Builder.merge``: what the left part lacks comes from the right; tags and annotations
    are unioned."""
    out = dict(left)
    for column in ("parent_span_id", "name", "kind", "scope_name", "scope_version", "trace_state"):
        out[column] = left[column] or right[column]
    start = _sent_start(left) or _sent_start(right) or left["start_time_unix_nano"]
    duration = _sent_duration(left) or _sent_duration(right) or left["duration_nano"]
    out.update(start_time_unix_nano=start, duration_nano=duration, end_time_unix_nano=start + duration)
    unsent = ZIPKIN_NO_TIMESTAMP | ZIPKIN_NO_DURATION  # unsent only when no part sent it
    out["flags"] = ((left["flags"] | right["flags"]) & ~unsent) | (left["flags"] & right["flags"] & unsent)
    if right["status_code"] == STATUS_ERROR or not left["status_code"]:
        out["status_code"], out["status_message"] = right["status_code"], right["status_message"]
    if _local_endpoint(left)[0] is None:
        out["service_name"] = right["service_name"]
    out["resource_attributes"] = _union(right["resource_attributes"], left["resource_attributes"],
                                        keep_left_service=_local_endpoint(left)[0] is not None)
    out["span_attributes"] = _union(left["span_attributes"], right["span_attributes"])
    events = {(e["time_unix_nano"], e["name"]): e for e in left["events"] + right["events"]}
    out["events"] = [events[k] for k in sorted(events)]
    return out


def _union(base: list[Row], override: list[Row], keep_left_service: bool = False) -> list[Row]:
    """Attributes of both, ``override`` winning on a shared key."""
    merged = {a["key"]: a for a in base}
    for a in override:
        if a["key"] == "service.name" and not keep_left_service and a.get("str") in _NO_SERVICE:
            continue  # a part without an endpoint does not erase the other part's service
        merged[a["key"]] = a
    return list(merged.values())
