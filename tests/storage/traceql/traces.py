"""A fixed, seeded set of traces for TraceQL tests: trees of spans with typed attributes, events,
links, statuses and kinds over a few services, all starting in one known hour."""

from __future__ import annotations

import random
from typing import Any

import pyarrow as pa

from spanlake.storage.attributes import attrs
from spanlake.storage.rows import spans_table
from tests.storage.spans import BASE_NS, sid, tid

SERVICES = ["frontend", "api", "db", "cache"]
NAMES = ["GET /", "POST /cart", "SELECT", "get", "render", "checkout"]
HTTP_CODES = [200, 200, 201, 404, 500, 503]
MS = 1_000_000


def random_traces(seed: int = 7, count: int = 40) -> pa.Table:
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    for t in range(1, count + 1):
        rows.extend(_trace(rng, t))
    return spans_table(rows)


def _trace(rng: random.Random, t: int) -> list[dict[str, Any]]:
    start = BASE_NS + t * 20_000 * MS  # one trace every 20 s
    n = rng.randint(1, 9)
    out = []
    for s in range(1, n + 1):
        parent = None if s == 1 else rng.randint(1, s - 1)
        service = rng.choice(SERVICES) if s > 1 else rng.choice(SERVICES[:2])
        begin = start + rng.randint(0, 50) * MS * (s > 1)
        duration = rng.choice([1, 5, 20, 150, 900, 1500, 3000]) * MS + rng.randint(0, 999)
        span_attrs: dict[str, Any] = {}
        if rng.random() < 0.6:
            span_attrs["http.status_code"] = rng.choice(HTTP_CODES)
        if rng.random() < 0.4:
            span_attrs["http.method"] = rng.choice(["GET", "POST", "DELETE"])
        if rng.random() < 0.3:
            span_attrs["cache.hit"] = rng.random() < 0.5
        if rng.random() < 0.3:
            span_attrs["ratio"] = rng.choice([0.25, 0.5, 1.0, 2.5])
        if rng.random() < 0.1:
            span_attrs["region"] = rng.choice(["eu", "us"])
        resource = {"service.name": service}
        if rng.random() < 0.5:
            resource["region"] = rng.choice(["eu", "us", "ap"])
        if service == "db":
            resource["db.system"] = "postgresql"
        events = []
        if rng.random() < 0.2:
            events.append({"time_unix_nano": begin + rng.randint(0, 3) * MS,
                           "name": rng.choice(["exception", "retry"]),
                           "attributes": attrs({"exception.type": rng.choice(["IOError", "Timeout"]),
                                                "attempt": rng.randint(1, 3)}),
                           "dropped_attributes_count": 0})
        extra = random.Random(t * 1000 + s)  # its own stream: the draws above stay as they were
        if events and extra.random() < 0.5:  # a second event, so "on one and the same event" matters
            events.append({"time_unix_nano": begin + 4 * MS, "name": extra.choice(["exception", "retry"]),
                           "attributes": attrs({"exception.type": extra.choice(["IOError", "Timeout"]),
                                                "attempt": extra.randint(1, 3)}),
                           "dropped_attributes_count": 0})
        links = []
        if rng.random() < 0.1:
            links.append({"trace_id": tid(rng.randint(1, 40)), "span_id": sid(1), "trace_state": "",
                          "attributes": attrs({"link.kind": "follows"}), "dropped_attributes_count": 0,
                          "flags": 0})
        out.append({
            "trace_id": tid(t), "span_id": sid(t * 100 + s),
            "parent_span_id": None if parent is None else sid(t * 100 + parent),
            "name": rng.choice(NAMES), "kind": rng.choice([1, 2, 2, 3, 3, 4, 5]),
            "status_code": rng.choice([0, 0, 0, 1, 2]),
            "status_message": rng.choice(["", "", "boom"]),
            "start_time_unix_nano": begin, "end_time_unix_nano": begin + duration,
            "resource_attributes": attrs(resource), "span_attributes": attrs(span_attrs),
            "scope_name": rng.choice(["io.opentelemetry.http", "manual"]),
            "scope_version": rng.choice(["1.0", "2.1"]),
            "events": events, "links": links,
        })
    return out
