"""Seeded generator of the Jaeger ClickHouse benchmark's data shape, as ready-to-send OTLP requests.

N spans in N/10 traces of real parent/child trees, 10 services with ~20 operations each, 11 span
attributes per span drawn from 97 keys and 1,000 values, log-normal durations, start times over the hour
ending at "now", ~3% errors and an event on 10% of spans. Output: one file of length-prefixed
``ExportTraceServiceRequest``s of 1,000 spans each (see ``wire.read_records``) plus a JSON manifest that
tells the query phase what exists and what each search should find.

Usage: ``python -m bench.generate --spans 1000000 --out bench/out``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
from numpy.typing import NDArray

from bench import wire

SPANS_PER_TRACE = 10
SPANS_PER_REQUEST = 1000
TRACES_PER_CHUNK = 10_000  # numpy works on 100k spans at a time: bounded memory, full vector speed
HOUR_NS = 3600 * 10**9
ATTRS_PER_SPAN, ATTR_KEYS, ATTR_VALUES = 11, 97, 1000
ERROR_RATE, EVENT_RATE = 0.03, 0.10
SERVICES = [
    "frontend", "checkout", "cart", "payment", "shipping",
    "currency", "catalog", "recommendation", "ad", "email",
]  # fmt: skip
KIND_INTERNAL, KIND_SERVER, KIND_CLIENT = 1, 2, 3


def operations(service: int) -> list[str]:
    """18..22 operations per service, so "~20 operations each" with some spread."""
    verbs = ["GET", "POST", "PUT", "DELETE"]
    count = 18 + service % 5
    return [f"{verbs[op % 4]} /{SERVICES[service]}/v1/resource-{op:02d}" for op in range(count)]


def attr_key(index: int) -> str:
    return f"attr_{index:02d}"


def attr_value(index: int) -> str:
    return f"value_{index:03d}"


@dataclass
class Searches:
    """What the query phase asks, and what the data says each answer must contain."""

    service: str
    operation: str
    recent_start_ns: int  # "the last 15 minutes" of the generated hour
    recent_traces: int  # traces with a span of (service, operation) starting in that window
    attr_key: str
    attr_value: str
    attr_traces: int  # traces with a span carrying attr_key=attr_value
    nomatch_service: str
    nomatch_key: str
    nomatch_value: str
    slow_service: str
    slow_threshold_ns: int  # the service's p99 span duration
    slow_traces: int  # traces with a span of slow_service longer than the threshold


@dataclass
class Manifest:
    seed: int
    spans: int
    traces: int
    requests: int
    requests_file: str
    start_ns: int  # the generated hour: every span starts and ends inside [start_ns, end_ns]
    end_ns: int
    services: list[str]
    existing_trace_ids: list[str]
    absent_trace_ids: list[str]
    searches: Searches
    generate_seconds: float = 0.0
    error_spans: int = 0
    event_spans: int = 0
    extra: dict[str, int] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, path: Path) -> Manifest:
        raw = json.loads(path.read_text())
        raw["searches"] = Searches(**raw["searches"])
        return cls(**raw)


class Dictionary:
    """Pre-encoded bytes of everything drawn from a small set: attributes, names, resources."""

    def __init__(self) -> None:
        self.attributes = self._attribute_table()
        self.ops = [operations(s) for s in range(len(SERVICES))]
        self.op_offset = np.cumsum([0] + [len(ops) for ops in self.ops])
        flat = [wire.field(wire.SPAN_NAME, name.encode()) for ops in self.ops for name in ops]
        self.names, self.name_lengths = wire.byte_table(flat)
        event = wire.field(wire.EVENT_NAME, b"cache.miss") + wire.field(
            wire.EVENT_ATTRIBUTES, wire.string_key_value("cache.key", "session")
        )
        self.event_tail = event
        self.resource_scope = [self._resource_scope(s) for s in range(len(SERVICES))]

    @staticmethod
    def _attribute_table() -> NDArray[np.uint8]:
        """(97 * 1000, width) encodings of every span attribute field; fixed width by construction."""
        keys, _ = wire.byte_table(
            [wire.field(wire.KEY_VALUE_KEY, attr_key(k).encode()) for k in range(ATTR_KEYS)]
        )
        values, _ = wire.byte_table(
            [wire.field(wire.KEY_VALUE_VALUE, wire.field(wire.ANY_VALUE_STRING, attr_value(v).encode()))
             for v in range(ATTR_VALUES)]
        )  # fmt: skip
        prefix = np.array([wire.SPAN_ATTRIBUTES, keys.shape[1] + values.shape[1]], dtype=np.uint8)
        rows = ATTR_KEYS * ATTR_VALUES
        return np.concatenate(
            [
                np.broadcast_to(prefix, (rows, 2)),
                np.repeat(keys, ATTR_VALUES, axis=0),
                np.tile(values, (ATTR_KEYS, 1)),
            ],
            axis=1,
        )

    @staticmethod
    def _resource_scope(service: int) -> tuple[bytes, bytes]:
        attrs = {
            "service.name": SERVICES[service],
            "host.name": f"host-{service}",
            "telemetry.sdk.language": "python",
        }
        resource = b"".join(
            wire.field(wire.RESOURCE_ATTRIBUTES, wire.string_key_value(k, v)) for k, v in attrs.items()
        )
        scope = wire.field(wire.SCOPE_NAME, b"spanlake.bench") + wire.field(wire.SCOPE_VERSION, b"1.0.0")
        return wire.field(wire.RESOURCE_SPANS_RESOURCE, resource), wire.field(wire.SCOPE_SPANS_SCOPE, scope)


@dataclass
class Chunk:
    """Columns of one chunk of spans, trace-major (span j of trace t at row t*10 + j)."""

    trace_id: NDArray[np.uint8]  # (n, 16)
    span_id: NDArray[np.uint8]  # (n, 8)
    parent: NDArray[np.int64]  # row of the parent span, -1 for roots
    service: NDArray[np.int64]
    op: NDArray[np.int64]  # index into the service's operations
    kind: NDArray[np.int64]
    start: NDArray[np.int64]
    duration: NDArray[np.int64]
    error: NDArray[np.bool_]
    event: NDArray[np.bool_]
    event_time: NDArray[np.int64]
    attr_key: NDArray[np.int64]  # (n, 11)
    attr_value: NDArray[np.int64]  # (n, 11)


def make_chunk(
    rng: np.random.Generator, first_trace: int, traces: int, total_traces: int, start_ns: int
) -> Chunk:
    n = traces * SPANS_PER_TRACE
    t_ids = np.frombuffer(rng.bytes(16 * traces), dtype=np.uint8).reshape(traces, 16)
    span_ids = np.frombuffer(rng.bytes(8 * n), dtype=np.uint8).reshape(n, 8)
    shape = (traces, SPANS_PER_TRACE)
    # Parent of span j is one of spans 0..j-1 of the same trace: a random recursive tree.
    local_parent = np.floor(rng.random(shape) * np.arange(SPANS_PER_TRACE)).astype(np.int64)
    local_parent[:, 0] = -1
    service = np.empty(shape, dtype=np.int64)
    kind = np.empty(shape, dtype=np.int64)
    start = np.empty(shape, dtype=np.int64)
    duration = np.empty(shape, dtype=np.int64)
    rows = np.arange(traces)
    # Roots: evenly spread over the hour in trace order (ingest arrives roughly in time order).
    root_dur = np.clip(rng.lognormal(np.log(80e6), 1.0, traces), 1e6, 120e9).astype(np.int64)
    slot = (first_trace + rows + rng.random(traces)) / total_traces
    root_start = start_ns + (slot * HOUR_NS).astype(np.int64)
    root_start = np.minimum(root_start, start_ns + HOUR_NS - root_dur)
    service[:, 0], kind[:, 0], start[:, 0], duration[:, 0] = (
        rng.integers(0, 10, traces),
        KIND_SERVER,
        root_start,
        root_dur,
    )
    child_dur = rng.lognormal(np.log(15e6), 1.2, shape)
    same_service = rng.random(shape) < 0.5
    other_service = rng.integers(0, len(SERVICES), shape)
    placement = rng.random(shape)
    local_kind = np.where(rng.random(shape) < 0.5, KIND_INTERNAL, KIND_CLIENT)
    for j in range(1, SPANS_PER_TRACE):
        p = local_parent[:, j]
        p_service, p_start, p_dur = service[rows, p], start[rows, p], duration[rows, p]
        service[:, j] = np.where(same_service[:, j], p_service, other_service[:, j])
        kind[:, j] = np.where(service[:, j] == p_service, local_kind[:, j], KIND_SERVER)
        dur = np.minimum(child_dur[:, j], p_dur * 0.9).astype(np.int64) + 1000
        duration[:, j] = dur
        start[:, j] = p_start + (placement[:, j] * (p_dur - dur)).astype(np.int64)
    flat_service = service.ravel()
    op_count = np.array([len(operations(s)) for s in range(len(SERVICES))])
    op = (rng.random(n) * op_count[flat_service]).astype(np.int64)
    flat_start, flat_dur = start.ravel(), duration.ravel()
    event = rng.random(n) < EVENT_RATE
    key0 = rng.integers(0, ATTR_KEYS, n)
    step = rng.integers(1, ATTR_KEYS, n)  # 97 is prime: key0 + j*step hits 11 distinct keys
    keys = (key0[:, None] + np.arange(ATTRS_PER_SPAN)[None, :] * step[:, None]) % ATTR_KEYS
    parent = np.where(local_parent >= 0, local_parent + (rows * SPANS_PER_TRACE)[:, None], -1).ravel()
    return Chunk(
        trace_id=np.repeat(t_ids, SPANS_PER_TRACE, axis=0),
        span_id=span_ids,
        parent=parent,
        service=flat_service,
        op=op,
        kind=kind.ravel(),
        start=flat_start,
        duration=flat_dur,
        error=rng.random(n) < ERROR_RATE,
        event=event,
        event_time=flat_start + (rng.random(n) * flat_dur).astype(np.int64),
        attr_key=keys,
        attr_value=rng.integers(0, ATTR_VALUES, (n, ATTRS_PER_SPAN)),
    )


def encode_spans(
    chunk: Chunk, order: NDArray[np.int64], d: Dictionary
) -> tuple[NDArray[np.uint8], NDArray[np.int64]]:
    """Span messages (each wrapped as ScopeSpans.spans) in ``order``: flat bytes and per-span lengths."""
    c = chunk
    parent_rows = np.where(c.parent[order] >= 0, c.parent[order], 0)
    name_index = d.op_offset[c.service[order]] + c.op[order]
    start, duration = c.start[order], c.duration[order]
    n = order.size
    kind = np.stack([np.full(n, wire.SPAN_KIND), c.kind[order]], axis=1).astype(np.uint8)
    attrs = d.attributes[c.attr_key[order] * ATTR_VALUES + c.attr_value[order]].reshape(n, -1)
    event_body = np.concatenate(
        [np.full((n, 1), wire.EVENT_TIME, np.uint8), wire.fixed64(c.event_time[order]),
         np.broadcast_to(np.frombuffer(d.event_tail, np.uint8), (n, len(d.event_tail)))], axis=1,
    )  # fmt: skip
    status = np.broadcast_to(np.array([wire.SPAN_STATUS, 2, wire.STATUS_CODE, 2], np.uint8), (n, 4))
    blocks = [
        wire.Block.constant(bytes([wire.SPAN_TRACE_ID, 16]), c.trace_id[order]),
        wire.Block.constant(bytes([wire.SPAN_SPAN_ID, 8]), c.span_id[order]),
        wire.Block.constant(
            bytes([wire.SPAN_PARENT_SPAN_ID, 8]), c.span_id[parent_rows], c.parent[order] >= 0
        ),
        wire.Block(d.names[name_index], d.name_lengths[name_index]),
        wire.Block(kind, np.full(n, 2)),
        wire.Block.constant(bytes([wire.SPAN_START]), wire.fixed64(start)),
        wire.Block.constant(bytes([wire.SPAN_END]), wire.fixed64(start + duration)),
        wire.Block(np.ascontiguousarray(attrs), np.full(n, attrs.shape[1])),
        wire.Block.constant(bytes([wire.SPAN_EVENTS, event_body.shape[1]]), event_body, c.event[order]),
        wire.Block(np.ascontiguousarray(status), np.where(c.error[order], 4, 0)),
    ]
    return wire.join_rows([wire.length_prefix(wire.SCOPE_SPANS_SPANS, blocks), *blocks])


def write_chunk(out: BinaryIO, chunk: Chunk, d: Dictionary) -> int:
    """Write the chunk as requests of SPANS_PER_REQUEST spans, one ResourceSpans per service; count them."""
    n = chunk.service.size
    request = np.arange(n) // SPANS_PER_REQUEST
    order = np.lexsort((chunk.service, request))
    data, lengths = encode_spans(chunk, order, d)
    ends = np.cumsum(lengths)
    group_key = request[order] * len(SERVICES) + chunk.service[order]
    bounds = np.flatnonzero(np.diff(group_key)) + 1
    starts = np.concatenate([[0], bounds])
    stops = np.concatenate([bounds, [n]])
    raw = data.tobytes()
    requests: dict[int, list[bytes]] = {}
    for lo, hi in zip(starts.tolist(), stops.tolist(), strict=True):
        resource, scope = d.resource_scope[int(chunk.service[order[lo]])]
        spans = raw[(ends[lo] - lengths[lo]) : ends[hi - 1]]
        scope_spans = wire.field(wire.RESOURCE_SPANS_SCOPE_SPANS, scope + spans)
        requests.setdefault(int(request[order[lo]]), []).append(
            wire.field(wire.REQUEST_RESOURCE_SPANS, resource + scope_spans)
        )
    for index, parts in sorted(requests.items()):
        spans_in = min(SPANS_PER_REQUEST, n - index * SPANS_PER_REQUEST)
        wire.write_record(out, b"".join(parts), spans_in)
    return len(requests)


class Tally:
    """Collects what the manifest reports about the data while chunks stream past."""

    def __init__(self, rng: np.random.Generator, total_traces: int, recent_start_ns: int) -> None:
        self.sample = set(rng.choice(total_traces, size=min(100, total_traces), replace=False).tolist())
        self.recent_start_ns = recent_start_ns
        self.existing: list[str] = []
        self.recent: set[bytes] = set()
        self.attr: set[bytes] = set()
        self.slow_dur: list[NDArray[np.int64]] = []
        self.slow_trace: list[NDArray[np.int64]] = []
        self.errors = self.events = 0

    def add(self, chunk: Chunk, first_trace: int) -> None:
        ids = chunk.trace_id[::SPANS_PER_TRACE]
        for t in range(ids.shape[0]):
            if first_trace + t in self.sample:
                self.existing.append(ids[t].tobytes().hex())
        recent = (chunk.service == 0) & (chunk.op == 0) & (chunk.start >= self.recent_start_ns)
        self.recent.update(chunk.trace_id[i].tobytes() for i in np.flatnonzero(recent))
        has_attr = ((chunk.attr_key == 42) & (chunk.attr_value == 777)).any(axis=1)
        self.attr.update(chunk.trace_id[i].tobytes() for i in np.flatnonzero(has_attr))
        slow = chunk.service == 3
        self.slow_dur.append(chunk.duration[slow])
        self.slow_trace.append(np.flatnonzero(slow) // SPANS_PER_TRACE + first_trace)
        self.errors += int(chunk.error.sum())
        self.events += int(chunk.event.sum())

    def slow(self) -> tuple[int, int]:
        """The p99 duration of the slow-search service, and how many traces have a span above it."""
        durations = np.concatenate(self.slow_dur)
        threshold = int(np.quantile(durations, 0.99)) if durations.size else 0
        traces = np.unique(np.concatenate(self.slow_trace)[durations > threshold])
        return threshold, int(traces.size)


def generate(spans: int, out_dir: Path, seed: int = 42, now_ns: int | None = None) -> Manifest:
    """Write ``requests.bin`` and ``manifest.json`` under ``out_dir``; return the manifest."""
    began = time.perf_counter()
    if spans % SPANS_PER_TRACE:
        raise ValueError(f"--spans must be a multiple of {SPANS_PER_TRACE}, got {spans}")
    total_traces = spans // SPANS_PER_TRACE
    end_ns = now_ns if now_ns is not None else time.time_ns()
    start_ns = end_ns - HOUR_NS
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    tally = Tally(np.random.default_rng(seed + 1), total_traces, end_ns - 15 * 60 * 10**9)
    dictionary = Dictionary()
    requests_path = out_dir / "requests.bin"
    n_requests = 0
    chunk_traces = TRACES_PER_CHUNK
    with requests_path.open("wb") as out:
        for first in range(0, total_traces, chunk_traces):
            count = min(chunk_traces, total_traces - first)
            chunk = make_chunk(rng, first, count, total_traces, start_ns)
            n_requests += write_chunk(out, chunk, dictionary)
            tally.add(chunk, first)
    threshold, slow_traces = tally.slow()
    absent = np.random.default_rng(seed + 2).bytes(16 * 100)
    manifest = Manifest(
        seed=seed,
        spans=spans,
        traces=total_traces,
        requests=n_requests,
        requests_file=str(requests_path),
        start_ns=start_ns,
        end_ns=end_ns,
        services=list(SERVICES),
        existing_trace_ids=tally.existing,
        absent_trace_ids=[absent[i : i + 16].hex() for i in range(0, len(absent), 16)],
        searches=Searches(
            service=SERVICES[0],
            operation=operations(0)[0],
            recent_start_ns=tally.recent_start_ns,
            recent_traces=len(tally.recent),
            attr_key=attr_key(42),
            attr_value=attr_value(777),
            attr_traces=len(tally.attr),
            nomatch_service=SERVICES[1],
            nomatch_key=attr_key(7),
            nomatch_value="no-such-value",
            slow_service=SERVICES[3],
            slow_threshold_ns=threshold,
            slow_traces=slow_traces,
        ),
        error_spans=tally.errors,
        event_spans=tally.events,
    )
    manifest.generate_seconds = round(time.perf_counter() - began, 3)
    manifest.save(out_dir / "manifest.json")
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=int(os.environ.get("BENCH_SPANS", 1_000_000)))
    parser.add_argument("--out", type=Path, default=Path("bench/out"))
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    manifest = generate(args.spans, args.out, args.seed)
    print(f"{manifest.spans} spans in {manifest.requests} requests -> {manifest.requests_file} "
          f"({manifest.generate_seconds:.1f} s)")  # fmt: skip


if __name__ == "__main__":
    main()
