"""Serialized OTLP ``Span`` messages -> span-level columns, all spans of a request at once.

The spans are byte ranges of one buffer; ``wire_scan.scan`` splits them into fields, and each column is
picked out with array indexing (field numbers from opentelemetry-proto ``trace.proto``). Nested status,
events and links are scanned the same way, and every attribute list becomes KeyValue byte ranges for
``otlp_attrs.decode_key_value_ranges``.

Spans with unusable IDs are dropped and counted (OTLP partial success), the rest kept: a trace ID must
be 16 bytes and not all zero, a span ID 8 bytes and not all zero, a parent span ID empty or 8 bytes (all
zero means "no parent", as in the collector's pdata), a link's IDs empty or full length.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from spanlake.collector.formats.attr_columns import list_column
from spanlake.collector.formats.errors import FormatError
from spanlake.collector.formats.otlp_attrs import decode_key_value_ranges
from spanlake.collector.formats.span_columns import BAD_LINK_ID, BAD_PARENT_ID, BAD_SPAN_ID, BAD_TRACE_ID
from spanlake.collector.formats.wire_scan import (
    I32_WIRE,
    I64_WIRE,
    LEN,
    PAD,
    VARINT,
    Fields,
    Mask,
    binary_column,
    fixed,
    scan,
)
from spanlake.storage.schema import ATTRIBUTES, EVENT, LINK

I64 = npt.NDArray[np.int64]

INT64_MAX = np.uint64(2**63 - 1)


@dataclass
class _Records:
    """Serialized messages of one kind: byte ranges of the shared buffer, and their fields."""

    buf: npt.NDArray[np.uint8]
    data: pa.Buffer
    start: I64
    end: I64
    fields: Fields
    # Columns already picked out, by field number: IDs and links are read twice (checks, output).
    cache: dict[tuple[str, int], Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.start)

    def bytes_field(self, number: int) -> tuple[I64, I64, Mask]:
        """Start, length and presence of a LEN field (last occurrence wins)."""
        key = ("bytes", number)
        if key not in self.cache:
            self.cache[key] = self._bytes_field(number)
        result: tuple[I64, I64, Mask] = self.cache[key]
        return result

    def _bytes_field(self, number: int) -> tuple[I64, I64, Mask]:
        fields = self.fields
        at = fields.last(self.n, number, LEN)
        return fields.pick(fields.start, at), fields.pick(fields.length, at), at >= 0

    def text(self, number: int, what: str) -> pa.Array:
        start, length, present = self.bytes_field(number)
        column = binary_column(self.buf, self.data, start, length, present, pa.string())
        try:
            column.validate(full=True)
        except pa.ArrowInvalid:
            raise FormatError(f"a {what} is not valid UTF-8") from None
        return column

    def fixed_id(self, number: int, size: int) -> tuple[npt.NDArray[np.uint8], I64]:
        """The ID bytes (rows of a matrix; meaningful where the length is ``size``) and lengths."""
        start, length, _ = self.bytes_field(number)
        return fixed(self.buf, start, size), length

    def varint(self, number: int) -> npt.NDArray[np.uint64]:
        return self.fields.pick(self.fields.value, self.fields.last(self.n, number, VARINT))

    def fixed_int(self, number: int, wire: int, dtype: str) -> npt.NDArray[np.generic]:
        size = 8 if wire == I64_WIRE else 4
        at = self.fields.last(self.n, number, wire)
        raw = np.ascontiguousarray(fixed(self.buf, self.fields.pick(self.fields.start, at), size))
        return np.where(at >= 0, raw.view(dtype).ravel(), 0)

    def has(self, number: int) -> bool:
        """Whether any record has field ``number`` (links and events are often absent altogether)."""
        return bool((self.fields.number == number).any())

    def children(self, number: int, keep: Mask, what: str) -> tuple[_Records, I64]:
        """The nested messages in field ``number`` of the kept records, and how many each has."""
        key = ("children", number)
        cached = self.cache.get(key)
        if cached is not None and np.array_equal(cached[0], keep):
            return cached[1], cached[2]
        records, counts = self._children(number, keep, what)
        self.cache[key] = (keep, records, counts)
        return records, counts

    def _children(self, number: int, keep: Mask, what: str) -> tuple[_Records, I64]:
        at = self.fields.where(number, LEN)
        at = at[keep[self.fields.record[at]]]
        start = self.fields.start[at]
        end = start + self.fields.length[at]
        counts = np.bincount(self.fields.record[at], minlength=self.n)[keep]
        return _Records(self.buf, self.data, start, end, scan(self.buf, start, end, what)), counts

    def attributes(self, number: int, keep: Mask) -> pa.Array:
        at = self.fields.where(number, LEN)
        at = at[keep[self.fields.record[at]]]
        start = self.fields.start[at]
        counts = np.bincount(self.fields.record[at], minlength=self.n)[keep]
        values = decode_key_value_ranges(self.buf, self.data, start, start + self.fields.length[at])
        return list_column(_offsets(counts), values, ATTRIBUTES)


def decode_spans(data: bytes, lengths: I64) -> tuple[dict[str, pa.Array], Mask, Counter[str]]:
    """Columns of the kept spans, which spans were kept, and why the others were not.

    ``data`` holds the serialized spans back to back, ``lengths`` their sizes.
    """
    ends = np.cumsum(lengths, dtype=np.int64)
    starts = ends - lengths
    buf = np.frombuffer(data + bytes(PAD), np.uint8)
    spans = _Records(buf, pa.py_buffer(buf), starts, ends, scan(buf, starts, ends, "span"))
    keep, rejected = _valid(spans)
    rows = keep.nonzero()[0]
    status = _status(spans, keep)
    columns = {
        **_ids(spans, rows),
        "trace_state": spans.text(3, "trace state").take(rows),
        "flags": pa.array(spans.fixed_int(16, I32_WIRE, "<u4")[rows].astype(np.uint32)),
        "name": spans.text(5, "span name").take(rows),
        "kind": _int8(spans.varint(6)[rows], "kind"),
        "start_time_unix_nano": _nanos(spans.fixed_int(7, I64_WIRE, "<u8")[rows], "start time"),
        "end_time_unix_nano": _nanos(spans.fixed_int(8, I64_WIRE, "<u8")[rows], "end time"),
        **status,
        "span_attributes": spans.attributes(9, keep),
        "dropped_attributes_count": _uint32(spans.varint(10)[rows]),
        "events": _events(spans, keep),
        "dropped_events_count": _uint32(spans.varint(12)[rows]),
        "links": _links(spans, keep),
        "dropped_links_count": _uint32(spans.varint(14)[rows]),
    }
    return columns, keep, rejected


def _valid(spans: _Records) -> tuple[Mask, Counter[str]]:
    trace_id, trace_len = spans.fixed_id(1, 16)
    span_id, span_len = spans.fixed_id(2, 8)
    _, parent_len = spans.fixed_id(4, 8)
    checks = [
        (BAD_TRACE_ID, (trace_len == 16) & _nonzero(trace_id)),
        (BAD_SPAN_ID, (span_len == 8) & _nonzero(span_id)),
        (BAD_PARENT_ID, (parent_len == 0) | (parent_len == 8)),
        (BAD_LINK_ID, _links_valid(spans)),
    ]
    keep = np.ones(spans.n, np.bool_)
    rejected: Counter[str] = Counter()
    for reason, ok in checks:  # a span counts once, for the first check it fails
        failed = int(np.count_nonzero(keep & ~ok))
        if failed:
            rejected[reason] = failed
        keep &= ok
    return keep, rejected


def _links_valid(spans: _Records) -> Mask:
    if not spans.has(13):
        return np.ones(spans.n, np.bool_)
    links, _ = spans.children(13, np.ones(spans.n, np.bool_), "link")
    _, trace_len = links.fixed_id(1, 16)
    _, span_len = links.fixed_id(2, 8)
    bad = ~(((trace_len == 0) | (trace_len == 16)) & ((span_len == 0) | (span_len == 8)))
    at = spans.fields.where(13, LEN)
    ok = np.ones(spans.n, np.bool_)
    ok[spans.fields.record[at[bad]]] = False
    return ok


def _ids(spans: _Records, rows: I64) -> dict[str, pa.Array]:
    trace_id, _ = spans.fixed_id(1, 16)
    span_id, _ = spans.fixed_id(2, 8)
    parent, parent_len = spans.fixed_id(4, 8)
    parent, parent_len = parent[rows], parent_len[rows]
    has_parent = (parent_len == 8) & _nonzero(parent)  # all zero: no parent, as in pdata
    return {
        "trace_id": _fixed_binary(trace_id[rows], 16),
        "span_id": _fixed_binary(span_id[rows], 8),
        "parent_span_id": _fixed_binary(parent, 8, has_parent),
    }


def _status(spans: _Records, keep: Mask) -> dict[str, pa.Array]:
    if not spans.has(15):
        kept = int(np.count_nonzero(keep))
        return {"status_code": pa.array(np.zeros(kept, np.int8)), "status_message": _empty_strings(kept)}
    status, counts = spans.children(15, keep, "span status")
    # A span has at most one status normally; with repeats, the last one wins.
    last = np.cumsum(counts) - 1
    has = counts > 0
    code = np.zeros(len(counts), np.uint64)
    code[has] = status.varint(3)[last[has]]
    message = status.text(2, "status message")
    index = pa.array(np.where(has, last, 0), pa.int64(), mask=~has)
    messages = message.take(index).fill_null("") if len(message) else _empty_strings(len(counts))
    return {"status_code": _int8(code, "status code"), "status_message": messages}


def _events(spans: _Records, keep: Mask) -> pa.Array:
    if not spans.has(11):
        return _empty_lists(int(np.count_nonzero(keep)), EVENT)
    events, counts = spans.children(11, keep, "event")
    every = np.ones(events.n, np.bool_)
    struct = pa.StructArray.from_arrays([
        _nanos(events.fixed_int(1, I64_WIRE, "<u8"), "event time"),
        events.text(2, "event name"),
        events.attributes(3, every),
        _uint32(events.varint(4)),
    ], fields=list(EVENT))
    return list_column(_offsets(counts), struct, pa.list_(pa.field("item", EVENT, False)))


def _links(spans: _Records, keep: Mask) -> pa.Array:
    if not spans.has(13):
        return _empty_lists(int(np.count_nonzero(keep)), LINK)
    links, counts = spans.children(13, keep, "link")
    every = np.ones(links.n, np.bool_)
    trace_id, trace_len = links.fixed_id(1, 16)
    span_id, span_len = links.fixed_id(2, 8)
    # An empty link ID reads as the all-zero ID, as in pdata; the column is fixed width.
    trace_id[trace_len == 0] = 0
    span_id[span_len == 0] = 0
    struct = pa.StructArray.from_arrays([
        _fixed_binary(trace_id, 16),
        _fixed_binary(span_id, 8),
        links.text(3, "link trace state"),
        links.attributes(4, every),
        _uint32(links.varint(5)),
        pa.array(links.fixed_int(6, I32_WIRE, "<u4").astype(np.uint32)),
    ], fields=list(LINK))
    return list_column(_offsets(counts), struct, pa.list_(pa.field("item", LINK, False)))


# Built once: converting an empty Python list to a nested struct type costs ~100 us per request.
_NO_ITEMS = {EVENT: pa.array([], EVENT), LINK: pa.array([], LINK)}


def _empty_lists(n: int, item: pa.StructType) -> pa.Array:
    return list_column(np.zeros(n + 1, np.int32), _NO_ITEMS[item], pa.list_(pa.field("item", item, False)))


def _empty_strings(n: int) -> pa.Array:
    offsets = pa.py_buffer(np.zeros(n + 1, np.int32))
    return pa.Array.from_buffers(pa.string(), n, [None, offsets, pa.py_buffer(b"")])


def _fixed_binary(matrix: npt.NDArray[np.uint8], size: int, valid: Mask | None = None) -> pa.Array:
    data = pa.py_buffer(np.ascontiguousarray(matrix).tobytes())
    validity = None if valid is None else pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.Array.from_buffers(pa.binary(size), len(matrix), [validity, data])


def _nonzero(ids: npt.NDArray[np.uint8]) -> Mask:
    """Rows of an ID matrix (8 or 16 bytes wide) that are not all zero, 8 bytes at a time."""
    return cast(Mask, np.ascontiguousarray(ids).view(np.uint64).any(axis=1))


def _offsets(counts: I64) -> npt.NDArray[np.int32]:
    offsets = np.zeros(len(counts) + 1, np.int32)
    np.cumsum(counts, out=offsets[1:])
    return offsets


def _nanos(values: npt.NDArray[np.generic], what: str) -> pa.Array:
    values = values.astype(np.uint64)
    # Beyond int64 (after the year 2262) reads as negative: the span is then rejected on its own
    # (start outside the accepted window) or clamped (end before start) at admission, instead of
    # the whole request failing (issue 14).
    return pa.array(values.view(np.int64))


def _int8(values: npt.NDArray[np.uint64], what: str) -> pa.Array:
    """An enum: an int32 on the wire (negative ones are 10-byte varints), stored as int8."""
    signed = values.astype(np.uint64).view(np.int64)
    if len(signed) and (signed.min() < -128 or signed.max() > 127):
        raise FormatError(f"{what}: a value is out of range for int8")
    return pa.array(signed.astype(np.int8))


def _uint32(values: npt.NDArray[np.uint64]) -> pa.Array:
    # protobuf parsers keep the low 32 bits of an oversized uint32 varint
    return pa.array((values.astype(np.uint64) & np.uint64(0xFFFFFFFF)).astype(np.uint32))
