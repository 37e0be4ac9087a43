"""Query-time trace fix-ups applied unless the caller asks for ``raw`` traces (Jaeger's adjusters,
``internal/adjuster/standard.go``). Each is a pure ``pa.Table -> pa.Table`` function; ``adjust`` runs
them in order.
"""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa

from spanlake.storage.schema import SPAN_KIND_BY_NAME

Adjuster = Callable[[pa.Table], pa.Table]
_SERVER = SPAN_KIND_BY_NAME["server"]


def deduplicate_client_server_span_ids(spans: pa.Table) -> pa.Table:
    """Give a server span that shares its span ID with its client (Zipkin's ``shared`` spans, B3 from
    Istio/Envoy) a fresh ID, parented to the client; the server side's children follow it.

    Without this a UI sees two spans with one ID and cannot draw the tree. Other duplicate IDs (two
    spans that are not a client/server pair) are left alone: Jaeger preserves them.
    """
    trace_ids = spans["trace_id"].to_pylist()
    span_ids = spans["span_id"].to_pylist()
    kinds = spans["kind"].to_pylist()
    parents = spans["parent_span_id"].to_pylist()
    non_server = {(t, s) for t, s, k in zip(trace_ids, span_ids, kinds, strict=True) if k != _SERVER}
    shared = [i for i, (t, s, k) in enumerate(zip(trace_ids, span_ids, kinds, strict=True))
              if k == _SERVER and (t, s) in non_server]
    if not shared:
        return spans
    used = set(zip(trace_ids, span_ids, strict=True))
    renamed: dict[tuple[bytes, bytes], bytes] = {}
    for i in shared:
        key = (trace_ids[i], span_ids[i])
        if key in renamed:
            continue
        new_id = _unused_id(trace_ids[i], int.from_bytes(span_ids[i], "big"), used)
        renamed[key] = new_id
        parents[i], span_ids[i] = span_ids[i], new_id
    for i, (t, parent) in enumerate(zip(trace_ids, parents, strict=True)):
        new_parent = renamed.get((t, parent)) if parent is not None else None
        if new_parent is not None and span_ids[i] != new_parent:
            parents[i] = new_parent
    return _replace(_replace(spans, "span_id", span_ids), "parent_span_id", parents)


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
    return spans.sort_by([("start_time_unix_nano", "ascending")])


# Order matters: IDs are made unique before anything that might key on them.
STANDARD: tuple[Adjuster, ...] = (deduplicate_client_server_span_ids, sort_by_start_time)


def adjust(spans: pa.Table, adjusters: tuple[Adjuster, ...] = STANDARD) -> pa.Table:
    for adjuster in adjusters:
        spans = adjuster(spans)
    return spans


__all__ = ["STANDARD", "adjust", "deduplicate_client_server_span_ids", "sort_by_start_time"]
