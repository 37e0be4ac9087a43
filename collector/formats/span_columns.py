"""Column lists for one converted request, turned into a ``SPAN_SCHEMA`` table in one go.

The converters' loops append plain values to these lists (no dict per span). Resources and scopes are
stored once each and repeated onto their spans with ``take``; nested events and links get their own
offset lists. Attribute builders are pluggable: protobuf requests hand over raw KeyValue bytes
(``otlp_attrs.RawAttrs``), OTLP/JSON hands over typed values (``attr_columns.TypedAttrs``).
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Generic, Protocol, TypeVar

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from spanlake.collector.formats.attr_columns import TypedAttrs, list_column
from spanlake.collector.formats.errors import FormatError
from spanlake.storage.schema import EVENT, LINK, SPAN_SCHEMA

ZERO_TRACE_ID, ZERO_SPAN_ID = bytes(16), bytes(8)
# Why a span is dropped (OTLP partial success), in the words of the rejection message.
BAD_TRACE_ID = "an invalid trace ID (must be 16 bytes, not all zero)"
BAD_SPAN_ID = "an invalid span ID (must be 8 bytes, not all zero)"
BAD_PARENT_ID = "an invalid parent span ID (must be empty or 8 bytes)"
BAD_LINK_ID = "an invalid link (trace ID must be empty or 16 bytes, span ID empty or 8 bytes)"


class AttrBuilder(Protocol):
    def column(self) -> pa.Array: ...


A = TypeVar("A", bound=AttrBuilder)


class SpanColumns(Generic[A]):
    """Everything one request contributes, column by column."""

    def __init__(self, span_attrs: A, event_attrs: A, link_attrs: A) -> None:
        self.trace_id: list[bytes] = []
        self.span_id: list[bytes] = []
        self.parent_span_id: list[bytes | None] = []
        self.trace_state: list[str] = []
        self.flags: list[int] = []
        self.name: list[str] = []
        self.kind: list[int] = []
        self.start: list[int] = []
        self.end: list[int] = []
        self.status_code: list[int] = []
        self.status_message: list[str] = []
        self.dropped_attributes: list[int] = []
        self.dropped_events: list[int] = []
        self.dropped_links: list[int] = []
        # Spans arrive grouped: (resource, scope, number of spans) per run instead of a list per span.
        self.runs: list[tuple[int, int, int]] = []
        self.span_attrs = span_attrs
        self.events: _Nested[A] = _Nested(event_attrs, ("time_unix_nano", "name", "dropped_attributes_count"))
        self.links: _Nested[A] = _Nested(
            link_attrs,
            ("trace_id", "span_id", "trace_state", "dropped_attributes_count", "flags"),
        )
        self.resources = Resources()
        self.scopes = Scopes()
        self.rejected: Counter[str] = Counter()

    def table(self) -> pa.Table:
        counts = np.array([count for _, _, count in self.runs], np.int64)
        res = np.repeat(np.array([r for r, _, _ in self.runs], np.int32), counts)
        scope = np.repeat(np.array([s for _, s, _ in self.runs], np.int32), counts)
        columns: dict[str, Any] = {
            "trace_id": pa.array(self.trace_id, pa.binary(16)),
            "span_id": pa.array(self.span_id, pa.binary(8)),
            "parent_span_id": pa.array(self.parent_span_id, pa.binary(8)),
            "trace_state": pa.array(self.trace_state, pa.string()),
            "flags": _array(self.flags, pa.uint32(), "flags"),
            "name": pa.array(self.name, pa.string()),
            "kind": _array(self.kind, pa.int8(), "kind"),
            "start_time_unix_nano": _array(self.start, pa.int64(), "startTimeUnixNano"),
            "end_time_unix_nano": _array(self.end, pa.int64(), "endTimeUnixNano"),
            "status_code": _array(self.status_code, pa.int8(), "status.code"),
            "status_message": pa.array(self.status_message, pa.string()),
            "span_attributes": self.span_attrs.column(),
            "dropped_attributes_count": _array(self.dropped_attributes, pa.uint32(),
                                               "droppedAttributesCount"),
            "events": self.events.column(EVENT),
            "dropped_events_count": _array(self.dropped_events, pa.uint32(), "droppedEventsCount"),
            "links": self.links.column(LINK),
            "dropped_links_count": _array(self.dropped_links, pa.uint32(), "droppedLinksCount"),
        }
        return assemble(columns, self.resources, self.scopes, res, scope)

    def message(self) -> str:
        return rejection_message(self.rejected)


def assemble(columns: dict[str, pa.Array], resources: Resources, scopes: Scopes,
             resource_index: npt.NDArray[np.int32], scope_index: npt.NDArray[np.int32]) -> pa.Table:
    """The span table from span-level columns plus each span's resource and scope."""
    try:
        duration = pc.subtract_checked(columns["end_time_unix_nano"], columns["start_time_unix_nano"])
    except pa.ArrowInvalid:
        raise FormatError("a span's end - start overflows int64 nanoseconds") from None
    full = {
        **columns,
        "duration_nano": duration,
        **resources.columns(pa.array(resource_index, pa.int32())),
        **scopes.columns(pa.array(scope_index, pa.int32())),
    }
    return pa.Table.from_arrays([full[f.name] for f in SPAN_SCHEMA], schema=SPAN_SCHEMA)


def rejection_message(rejected: Counter[str]) -> str:
    """The partial-success message: how many spans were dropped, and why."""
    total = sum(rejected.values())
    if not total:
        return ""
    reasons = "; ".join(f"{count} with {why}" for why, count in rejected.items())
    return f"{total} span(s) rejected: {reasons}"


class _Nested(Generic[A]):
    """A list-of-struct column (events or links): per-span offsets, then one list per member."""

    def __init__(self, attrs: A, members: tuple[str, ...]) -> None:
        self.offsets: list[int] = [0]
        self.attrs = attrs
        self.values: dict[str, list[Any]] = {name: [] for name in members}

    def column(self, struct_type: pa.StructType) -> pa.Array:
        arrays = []
        for field in struct_type:
            if field.name == "attributes":
                arrays.append(self.attrs.column())
            else:
                arrays.append(_array(self.values[field.name], field.type, field.name))
        struct = pa.StructArray.from_arrays(arrays, fields=list(struct_type))
        return list_column(self.offsets, struct, pa.list_(pa.field("item", struct_type, False)))


class Resources:
    """Each distinct resource once; spans point at it by index."""

    def __init__(self) -> None:
        self.attrs = TypedAttrs()
        self.dropped: list[int] = []
        self.schema_url: list[str] = []
        self.service_name: list[str] = []

    def add(self, dropped: int, schema_url: str, service_name: str) -> int:
        """Record the resource whose attribute row was just closed; returns its index."""
        self.dropped.append(dropped)
        self.schema_url.append(schema_url)
        self.service_name.append(service_name)
        return len(self.dropped) - 1

    def columns(self, index: pa.Array) -> dict[str, pa.Array]:
        return {
            "service_name": pa.array(self.service_name, pa.string()).take(index),
            "resource_attributes": self.attrs.column().take(index),
            "resource_dropped_attributes_count":
                _array(self.dropped, pa.uint32(), "resource.droppedAttributesCount").take(index),
            "resource_schema_url": pa.array(self.schema_url, pa.string()).take(index),
        }


class Scopes:
    def __init__(self) -> None:
        self.name: list[str] = []
        self.version: list[str] = []
        self.attrs = TypedAttrs()
        self.dropped: list[int] = []
        self.schema_url: list[str] = []

    def add(self, name: str, version: str, dropped: int, schema_url: str) -> int:
        """Record the scope whose attribute row was just closed; returns its index."""
        self.name.append(name)
        self.version.append(version)
        self.dropped.append(dropped)
        self.schema_url.append(schema_url)
        return len(self.name) - 1

    def columns(self, index: pa.Array) -> dict[str, pa.Array]:
        return {
            "scope_name": pa.array(self.name, pa.string()).take(index),
            "scope_version": pa.array(self.version, pa.string()).take(index),
            "scope_attributes": self.attrs.column().take(index),
            "scope_dropped_attributes_count":
                _array(self.dropped, pa.uint32(), "scope.droppedAttributesCount").take(index),
            "scope_schema_url": pa.array(self.schema_url, pa.string()).take(index),
        }


_NUMPY_TYPES = {pa.int8(): np.int8, pa.int64(): np.int64, pa.uint32(): np.uint32}


def _array(values: list[Any], arrow_type: pa.DataType, what: str) -> pa.Array:
    """``pa.array`` with out-of-range numbers reported as a FormatError naming the field.

    Integer lists go through numpy, several times faster than pyarrow's per-item conversion, and numpy
    refuses (OverflowError) a Python int that does not fit the column.
    """
    try:
        dtype = _NUMPY_TYPES.get(arrow_type)
        if dtype is not None:
            return pa.array(np.array(values, dtype=dtype), arrow_type)
        return pa.array(values, arrow_type)
    except (OverflowError, TypeError, ValueError, pa.ArrowInvalid, pa.ArrowTypeError):
        raise FormatError(f"{what}: a value is out of range for {arrow_type}") from None
