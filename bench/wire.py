"""Just enough of the protobuf wire format to write OTLP spans in bulk with numpy.

Building one Python message object per span and attribute costs tens of seconds per million spans;
the benchmark's generator must cost almost nothing, so it writes the bytes itself. Each span is a row
of fixed-width byte blocks, each block present or absent per row (a parent ID only on child spans, an
event on 10% of spans...); a boolean mask drops absent bytes and numpy's row-major order keeps every
span's bytes together.

Field numbers are those of opentelemetry/proto/trace/v1/trace.proto and common/v1/common.proto.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from numpy.typing import NDArray

U8 = NDArray[np.uint8]

# (field number << 3) | wire type; wire types: 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32.
REQUEST_RESOURCE_SPANS = 0x0A  # ExportTraceServiceRequest.resource_spans = 1
RESOURCE_SPANS_RESOURCE = 0x0A  # ResourceSpans.resource = 1
RESOURCE_SPANS_SCOPE_SPANS = 0x12  # ResourceSpans.scope_spans = 2
RESOURCE_ATTRIBUTES = 0x0A  # Resource.attributes = 1
SCOPE_SPANS_SCOPE = 0x0A  # ScopeSpans.scope = 1
SCOPE_SPANS_SPANS = 0x12  # ScopeSpans.spans = 2
SCOPE_NAME, SCOPE_VERSION = 0x0A, 0x12  # InstrumentationScope.name = 1, version = 2
SPAN_TRACE_ID, SPAN_SPAN_ID, SPAN_PARENT_SPAN_ID = 0x0A, 0x12, 0x22  # 1, 2, 4
SPAN_NAME, SPAN_KIND = 0x2A, 0x30  # 5, 6
SPAN_START, SPAN_END = 0x39, 0x41  # 7, 8 (fixed64)
SPAN_ATTRIBUTES, SPAN_EVENTS, SPAN_STATUS = 0x4A, 0x5A, 0x7A  # 9, 11, 15
EVENT_TIME, EVENT_NAME, EVENT_ATTRIBUTES = 0x09, 0x12, 0x1A  # 1 (fixed64), 2, 3
STATUS_CODE = 0x18  # Status.code = 3
KEY_VALUE_KEY, KEY_VALUE_VALUE = 0x0A, 0x12  # KeyValue.key = 1, value = 2
ANY_VALUE_STRING = 0x0A  # AnyValue.string_value = 1

# Each request in a requests file: little-endian u32 byte length, u32 span count, then the bytes.
RECORD_HEADER = struct.Struct("<II")


def varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def field(tag: int, payload: bytes) -> bytes:
    """A length-delimited field: tag, varint length, payload."""
    return bytes([tag]) + varint(len(payload)) + payload


def string_key_value(key: str, value: str) -> bytes:
    """An encoded KeyValue with a string AnyValue (without the enclosing field tag)."""
    return field(KEY_VALUE_KEY, key.encode()) + field(
        KEY_VALUE_VALUE, field(ANY_VALUE_STRING, value.encode())
    )


def fixed64(values: NDArray[np.int64]) -> U8:
    """(n,) int64 -> (n, 8) little-endian bytes."""
    return np.ascontiguousarray(values.astype("<u8")).view(np.uint8).reshape(-1, 8)


def byte_table(items: list[bytes]) -> tuple[U8, NDArray[np.int64]]:
    """Variable-length byte strings -> a zero-padded (len(items), max_len) table and their lengths."""
    width = max(len(item) for item in items)
    table = np.zeros((len(items), width), dtype=np.uint8)
    for row, item in enumerate(items):
        table[row, : len(item)] = np.frombuffer(item, dtype=np.uint8)
    return table, np.array([len(item) for item in items], dtype=np.int64)


@dataclass
class Block:
    """One field (or run of fields) of every row: bytes left-aligned in ``data``, ``lengths`` used."""

    data: U8
    lengths: NDArray[np.int64]

    @classmethod
    def constant(cls, prefix: bytes, body: U8, present: NDArray[np.bool_] | None = None) -> Block:
        """A fixed prefix (tag + length) before a fixed-width body; absent rows get length 0."""
        rows = body.shape[0]
        head = np.broadcast_to(np.frombuffer(prefix, dtype=np.uint8), (rows, len(prefix)))
        data = np.concatenate([head, body], axis=1)
        lengths = np.full(rows, data.shape[1], dtype=np.int64)
        if present is not None:
            lengths = np.where(present, lengths, 0)
        return cls(data, lengths)


def join_rows(blocks: list[Block]) -> tuple[U8, NDArray[np.int64]]:
    """Concatenate each row's present bytes, rows in order: the flat bytes and each row's length."""
    data = np.concatenate([block.data for block in blocks], axis=1)
    mask = np.concatenate(
        [np.arange(block.data.shape[1])[None, :] < block.lengths[:, None] for block in blocks], axis=1
    )
    lengths = np.sum([block.lengths for block in blocks], axis=0)
    return data[mask], lengths


def length_prefix(tag: int, blocks: list[Block]) -> Block:
    """A block holding each row's tag and length, to go before ``blocks`` and make each row one field.

    Rows are 128..16383 bytes long, so the length is always a two-byte varint.
    """
    lengths = np.sum([block.lengths for block in blocks], axis=0)
    if lengths.size and (lengths.min() < 0x80 or lengths.max() >= 0x4000):
        raise ValueError(f"row lengths {lengths.min()}..{lengths.max()} need a varint other than 2 bytes")
    head = np.empty((lengths.size, 3), dtype=np.uint8)
    head[:, 0] = tag
    head[:, 1] = (lengths & 0x7F) | 0x80
    head[:, 2] = lengths >> 7
    return Block(head, np.full(lengths.size, 3))


def write_record(handle: BinaryIO, payload: bytes, spans: int) -> None:
    handle.write(RECORD_HEADER.pack(len(payload), spans))
    handle.write(payload)


def read_records(path: Path) -> Iterator[tuple[bytes, int]]:
    """Yield (ExportTraceServiceRequest bytes, span count) from a requests file."""
    with path.open("rb") as handle:
        while header := handle.read(RECORD_HEADER.size):
            size, spans = RECORD_HEADER.unpack(header)
            yield handle.read(size), spans
