"""Build span tables from Python rows: the simple path for converters that are not performance-critical."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pyarrow as pa

from spanlake.storage.schema import SPAN_SCHEMA

# Defaults for every column a converter may leave out; required columns have none.
_DEFAULTS: dict[str, Any] = {
    "parent_span_id": None,
    "trace_state": "",
    "flags": 0,
    "kind": 0,
    "status_code": 0,
    "status_message": "",
    "resource_attributes": [],
    "resource_dropped_attributes_count": 0,
    "resource_schema_url": "",
    "scope_name": "",
    "scope_version": "",
    "scope_attributes": [],
    "scope_dropped_attributes_count": 0,
    "scope_schema_url": "",
    "span_attributes": [],
    "dropped_attributes_count": 0,
    "events": [],
    "dropped_events_count": 0,
    "links": [],
    "dropped_links_count": 0,
}


def spans_table(rows: Iterable[dict[str, Any]]) -> pa.Table:
    """A ``SPAN_SCHEMA`` table from span dicts.

    Each dict needs ``trace_id``, ``span_id``, ``name``, ``start_time_unix_nano`` and
    ``end_time_unix_nano``; ``duration_nano`` and ``service_name`` (from the resource attribute
    ``service.name``) are derived when absent; every other column has a neutral default.
    """
    full = [_complete(row) for row in rows]
    return pa.Table.from_pylist(full, schema=SPAN_SCHEMA)


def _complete(row: dict[str, Any]) -> dict[str, Any]:
    out = {**_DEFAULTS, **row}
    if "duration_nano" not in row:
        out["duration_nano"] = out["end_time_unix_nano"] - out["start_time_unix_nano"]
    if "service_name" not in row:
        out["service_name"] = service_name_of(out["resource_attributes"])
    return out


def service_name_of(resource_attributes: list[dict[str, Any]]) -> str:
    """The ``service.name`` string of a resource, "" when absent or not a string."""
    for a in resource_attributes:
        if a["key"] == "service.name" and a["str"] is not None and a["type"] == 1:
            return str(a["str"])
    return ""
