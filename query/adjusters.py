"""Query-time trace fix-ups applied unless the caller asks for ``raw`` traces (Jaeger's adjusters,
``internal/adjuster/standard.go``). Each is a pure ``pa.Table -> pa.Table`` function; ``adjust`` runs
them in order.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa

from spanlake.query.span_merge import deduplicate_exact_spans, merge_zipkin_fragments, repeated_rows
from spanlake.storage.schema import SPAN_KIND_BY_NAME, ZIPKIN_ORIGIN, ZIPKIN_SHARED

Adjuster = Callable[[pa.Table], pa.Table]
_SERVER = SPAN_KIND_BY_NAME["server"]
_CLIENT = SPAN_KIND_BY_NAME["client"]


def deduplicate_client_server_span_ids(spans: pa.Table) -> pa.Table:
    """Give each server span that shares its span ID with its client (Zipkin's ``shared`` spans, B3
    from Istio/Envoy) a fresh ID, parented to the client; the server side's children follow it.

    Without this a UI sees two spans with one ID and cannot draw the tree. A span that came from Zipkin
    is shared when it says so (the stored ``shared`` flag) or, as Zipkin backfills it, when it is a
    server span with a client span of the same ID; any other server span is shared when a non-server
    span has its ID. Several shared server spans under one client ID (a retried or fanned-out call)
    each get their own ID and all keep the client as parent. Other duplicate IDs (two spans that are
    not a client/server pair) are left alone: Jaeger preserves them.
    """
    if not repeated_rows(spans):  # a shared span always repeats its client's ID: the common case
        return spans
    trace_ids = spans["trace_id"].to_pylist()
    span_ids = spans["span_id"].to_pylist()
    parents = spans["parent_span_id"].to_pylist()
    shared = _shared_server_rows(spans, trace_ids, span_ids)
    if not shared:
        return spans
    services = spans["service_name"].to_pylist()
    used = set(zip(trace_ids, span_ids, strict=True))
    # (trace, old ID) -> the new IDs of its server sides, with their services
    renamed: dict[tuple[bytes, bytes], list[tuple[bytes, str]]] = {}
    for i in shared:
        key = (trace_ids[i], span_ids[i])
        new_id = _unused_id(trace_ids[i], int.from_bytes(span_ids[i], "big"), used)
        renamed.setdefault(key, []).append((new_id, services[i]))
        parents[i], span_ids[i] = span_ids[i], new_id
    new_ids = {(t, new) for (t, _), sides in renamed.items() for new, _ in sides}
    for i, (t, parent) in enumerate(zip(trace_ids, parents, strict=True)):
        sides = renamed.get((t, parent)) if parent is not None else None
        if sides and (t, span_ids[i]) not in new_ids:
            parents[i] = _server_side_for(sides, services[i])
    return _replace(_replace(spans, "span_id", span_ids), "parent_span_id", parents)


def _shared_server_rows(spans: pa.Table, trace_ids: list[bytes], span_ids: list[bytes]) -> list[int]:
    kinds = spans["kind"].to_pylist()
    flags = spans["flags"].to_pylist()
    keys = list(zip(trace_ids, span_ids, strict=True))
    clients = {key for key, kind in zip(keys, kinds, strict=True) if kind == _CLIENT}
    non_servers = {key for key, kind in zip(keys, kinds, strict=True) if kind != _SERVER}

    def shared(i: int) -> bool:
        if flags[i] & ZIPKIN_ORIGIN:  # the flag, or Zipkin's backfill (Trace.merge)
            return bool(flags[i] & ZIPKIN_SHARED) or (kinds[i] == _SERVER and keys[i] in clients)
        return kinds[i] == _SERVER and keys[i] in non_servers

    candidates = [i for i in range(len(keys)) if shared(i)]
    chosen = set(candidates)
    # Only a shared side whose ID is also held by a span that keeps it (the client) needs a new one.
    owners = {key for i, key in enumerate(keys) if i not in chosen}
    return [i for i in candidates if keys[i] in owners]


def _server_side_for(sides: list[tuple[bytes, str]], service: str) -> bytes:
    """The server side a child of a shared ID belongs to: the one of its own service, else the first
    (a child cannot say which of several same-service servers it came from)."""
    return next((new for new, svc in sides if svc == service), sides[0][0])


def _unused_id(trace_id: bytes, start: int, used: set[tuple[bytes, bytes]]) -> bytes:
    candidate = start
    while True:
        candidate = (candidate + 1) % 2**64 or 1
        new_id = candidate.to_bytes(8, "big")
        if (trace_id, new_id) not in used:
            used.add((trace_id, new_id))
            return new_id


def _replace(table: pa.Table, name: str, values: list[bytes | None]) -> pa.Table:
    index = table.schema.get_field_index(name)
    return table.set_column(index, table.schema.field(name), pa.array(values, table.schema.field(name).type))


def sort_by_start_time(spans: pa.Table) -> pa.Table:
    """Spans in start order (stable), so every client sees a trace the same way regardless of how
    storage returned it."""
    starts = spans["start_time_unix_nano"].to_numpy()
    if bool(np.all(starts[1:] >= starts[:-1])):  # already in order: skip copying every column
        return spans
    return spans.sort_by([("start_time_unix_nano", "ascending")])


# Order matters: repeats and parts become one row first, so that the shared-ID fix sees each span
# side once; IDs are made unique before anything that might key on them.
STANDARD: tuple[Adjuster, ...] = (deduplicate_exact_spans, merge_zipkin_fragments,
                                  deduplicate_client_server_span_ids, sort_by_start_time)
# Zipkin's API returns shared spans as they are (its clients expect the shared ID).
ZIPKIN: tuple[Adjuster, ...] = (deduplicate_exact_spans, merge_zipkin_fragments, sort_by_start_time)


# Each of these returns its input unchanged when no (trace ID, span ID) occurs twice, as in nearly
# every trace: ``adjust`` checks that once instead of each of them checking it.
_ONLY_FOR_REPEATS = frozenset((deduplicate_exact_spans, merge_zipkin_fragments,
                               deduplicate_client_server_span_ids))


def adjust(spans: pa.Table, adjusters: tuple[Adjuster, ...] = STANDARD) -> pa.Table:
    repeats = bool(repeated_rows(spans))
    for adjuster in adjusters:
        if repeats or adjuster not in _ONLY_FOR_REPEATS:
            spans = adjuster(spans)
    return spans


__all__ = ["STANDARD", "ZIPKIN", "adjust", "deduplicate_client_server_span_ids", "sort_by_start_time"]
