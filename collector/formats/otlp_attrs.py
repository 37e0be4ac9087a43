"""Decode many serialized OTLP ``KeyValue`` messages at once, with numpy instead of a Python loop.

Nearly every attribute on the wire has one shape: ``0a <key len> <key> 12 <value len> <AnyValue>``,
the AnyValue holding one string, int, double or bool, with lengths under 128 (one-byte varints). Those
records are recognised and sliced with array arithmetic over the concatenated records; any other record
(arrays, kvlists, bytes, long strings, fields out of order, unknown fields) goes through upb's own
parser. Both paths give the same result; the fast one is over 10x cheaper per attribute.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
from google.protobuf.message import DecodeError
from opentelemetry.proto.common.v1 import common_pb2

from spanlake.collector.formats.anyvalue import pb_typed
from spanlake.collector.formats.attr_columns import (
    BOOL,
    BYTES,
    DOUBLE,
    INT,
    STR_TYPES,
    STRING,
    TypedAttrs,
    attribute_struct,
    list_column,
    str_mask,
)
from spanlake.collector.formats.errors import FormatError
from spanlake.collector.formats.wire_scan import PAD
from spanlake.storage.schema import ATTRIBUTES

I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]
Mask = npt.NDArray[np.bool_]

# Tags (field number << 3 | wire type) of KeyValue and AnyValue fields.
_KEY, _VALUE = 0x0A, 0x12
_STRING, _BOOL, _INT, _DOUBLE = 0x0A, 0x10, 0x18, 0x21
# Zero bytes after the records: reads past a record's end are clamped or stay inside them.
_PAD = PAD
_SHIFTS = (7 * np.arange(10)).astype(np.uint64)
_EMPTY = TypedAttrs()


class RawAttrs:
    """Attributes as serialized KeyValue messages; ``add_row`` takes one row's repeated field."""

    def __init__(self) -> None:
        self.offsets: list[int] = [0]
        self.records: list[bytes] = []

    def add_row(self, records: Any) -> None:
        self.records.extend(records)
        self.offsets.append(len(self.records))

    def column(self) -> pa.Array:
        return list_column(self.offsets, decode_key_values(self.records), ATTRIBUTES)


class _Pieces:
    """Byte strings located in one buffer, turned into Arrow arrays by a single ``take``.

    The buffer is cut into consecutive pieces (per record: header, key, value header, string value,
    then the gap to the next record), which makes a zero-copy Arrow array over it; text decoded by the
    slow path is appended after the buffer, one piece each. A member column is then ``take`` of one
    piece per attribute (null where the member is unset), so the bytes are copied once, in C++.
    """

    def __init__(self, data: pa.Buffer, bounds: I64) -> None:
        self.data = data
        self.extra: list[bytes] = []
        self.bounds = [bounds]
        self.size = data.size
        self.count = len(bounds) - 1

    def add(self, piece: bytes) -> int:
        """Append one piece; returns its index."""
        self.extra.append(piece)
        self.size += len(piece)
        self.bounds.append(np.array([self.size], np.int64))
        self.count += 1
        return self.count - 1

    def arrays(self, index: list[I64], valid: list[Mask], types: list[pa.DataType]
               ) -> list[pa.Array]:
        offsets = pa.py_buffer(np.concatenate(self.bounds).astype(np.int32))  # protobuf: < 2 GiB
        data = self.data
        if self.extra:
            data = pa.py_buffer(self.data.to_pybytes() + b"".join(self.extra))
        out = []
        for idx, mask, arrow_type in zip(index, valid, types, strict=True):
            pieces = pa.Array.from_buffers(arrow_type, self.count, [None, offsets, data])
            indices = idx.astype(np.int32)
            out.append(pieces.take(pa.array(indices) if mask.all() else pa.array(indices, mask=~mask)))
        return out


def decode_key_values(records: list[bytes]) -> pa.StructArray:
    """The ATTRIBUTE struct array of serialized KeyValue messages, in order."""
    lengths = np.fromiter(map(len, records), np.int64, len(records))
    ends = np.cumsum(lengths, dtype=np.int64)
    buf = np.frombuffer(b"".join(records) + bytes(_PAD), np.uint8)
    return decode_key_value_ranges(buf, pa.py_buffer(buf), ends - lengths, ends)


def decode_key_value_ranges(buf: U8, data: pa.Buffer, starts: I64, ends: I64) -> pa.StructArray:
    """The ATTRIBUTE struct array of the KeyValue messages at ``buf[starts[i]:ends[i]]``.

    ``data`` is ``buf`` as an Arrow buffer; ``buf`` must extend past the last record by ``PAD`` zero
    bytes. Raises ``FormatError`` for a record that is not a KeyValue or holds invalid UTF-8.
    """
    n = len(starts)
    if n == 0:
        return _EMPTY.struct()
    v = _layout(buf, starts, ends)
    # Piece bounds: 0 | per record: start, header end, key end, string start, end | buffer end.
    bounds = np.empty(5 * n + 2, np.int64)
    bounds[0], bounds[-1] = 0, data.size
    bounds[1:-1:5] = starts
    bounds[2:-1:5] = np.where(v.fast, starts + 2, starts)
    bounds[3:-1:5] = np.where(v.fast, starts + 2 + v.klen, starts)
    bounds[4:-1:5] = np.where(v.types == STRING, v.q + 2, np.where(v.fast, ends, starts))
    bounds[5:-1:5] = ends
    pieces = _Pieces(data, bounds)
    key_index = 5 * np.arange(n, dtype=np.int64) + 2
    index = (key_index, key_index + 2, np.zeros(n, np.int64))  # key, string and bytes pieces

    slow = (~v.fast).nonzero()[0]
    if len(slow):
        records = [buf[starts[row]:ends[row]].tobytes() for row in slow.tolist()]
        _slow(records, slow, pieces, v.types, index, v.ints, v.doubles, v.bools)
    types = v.types
    keys, strs, blobs = pieces.arrays(
        list(index),
        [np.ones(n, np.bool_), str_mask(types), types == BYTES],
        [pa.string(), pa.string(), pa.binary()],
    )
    return attribute_struct(
        _utf8(keys, "key"),
        types,
        _utf8(strs, "string value"),
        pa.array(v.ints, pa.int64(), mask=types != INT),
        pa.array(v.doubles, pa.float64(), mask=types != DOUBLE),
        pa.array(v.bools, pa.bool_(), mask=types != BOOL),
        blobs,
    )


@dataclass
class _Values:
    """What the common layout yields per record; ``fast`` is false where upb must decode it."""

    fast: Mask
    types: npt.NDArray[np.int8]
    klen: I64  # key length
    q: I64  # position of the AnyValue's first tag
    ints: I64
    doubles: npt.NDArray[np.float64]
    bools: Mask


def _layout(buf: U8, starts: I64, ends: I64) -> _Values:
    """Recognise ``0a <key len> <key> 12 <value len> <one AnyValue member>``, field by field."""
    lengths = ends - starts
    klen = buf[starts + 1].astype(np.int64)
    ok = (lengths >= 2) & (buf[starts] == _KEY) & (klen < 128)
    p = np.minimum(starts + 2 + klen, len(buf) - 4)  # the value's tag, if any
    no_value = ok & (p == ends)
    vlen = buf[p + 1].astype(np.int64)
    has_value = ok & ~no_value & (buf[p] == _VALUE) & (vlen < 128) & (p + 2 + vlen == ends)
    q = p + 2
    tag, arg = buf[q], buf[q + 1].astype(np.int64)
    empty = no_value | (has_value & (vlen == 0))
    is_str = has_value & (tag == _STRING) & (arg < 128) & (arg + 2 == vlen)
    is_bool = has_value & (tag == _BOOL) & (vlen == 2) & (arg <= 1)
    is_double = has_value & (tag == _DOUBLE) & (vlen == 9)
    is_int = has_value & (tag == _INT) & (vlen >= 2) & (vlen <= 11)
    ints, int_ok = _varints(buf, q + 1, vlen - 1, is_int)
    is_int &= int_ok
    types = np.zeros(len(starts), np.int8)
    types[is_str], types[is_bool], types[is_int], types[is_double] = STRING, BOOL, INT, DOUBLE
    return _Values(empty | is_str | is_bool | is_int | is_double, types, klen, q, ints,
                   _doubles(buf, q + 1, is_double), arg == 1)


def _varints(buf: U8, start: I64, size: I64, mask: Mask) -> tuple[I64, Mask]:
    """The int64 varints of ``size`` bytes at ``start`` (rows in ``mask``), and which were well formed."""
    out = np.zeros(len(start), np.int64)
    good = np.zeros(len(start), np.bool_)
    rows = mask.nonzero()[0]
    if len(rows) == 0:
        return out, good
    pos = np.arange(10)
    raw = buf[start[rows, None] + pos]
    inside = pos < size[rows, None]
    # Every byte but the last has the continuation bit; the last does not.
    cont = (raw & 0x80) != 0
    good[rows] = np.all(~inside | (cont == (pos < size[rows, None] - 1)), axis=1)
    parts = np.where(inside, (raw & 0x7F).astype(np.uint64) << _SHIFTS, np.uint64(0))
    out[rows] = np.bitwise_or.reduce(parts, axis=1).view(np.int64)
    return out, good


def _doubles(buf: U8, start: I64, mask: Mask) -> npt.NDArray[np.float64]:
    out = np.zeros(len(start), np.float64)
    rows = mask.nonzero()[0]
    if len(rows):
        raw = buf[start[rows, None] + np.arange(8)]
        out[rows] = np.ascontiguousarray(raw).view("<f8").ravel()
    return out


def _slow(records: list[bytes], rows: npt.NDArray[np.intp], pieces: _Pieces,
          types: npt.NDArray[np.int8], index: tuple[I64, I64, I64], ints: I64,
          doubles: npt.NDArray[np.float64], bools: Mask) -> None:
    """Decode the uncommon records (``records``, at ``rows``) with upb; their text becomes pieces."""
    key_index, str_index, blob_index = index
    for row, record in zip(rows.tolist(), records, strict=True):
        try:
            kv = common_pb2.KeyValue.FromString(record)
        except DecodeError as exc:
            raise FormatError(f"attribute {row}: not a valid KeyValue message ({exc})") from None
        value_type, value = pb_typed(kv.value)
        types[row] = value_type
        key_index[row] = pieces.add(kv.key.encode())
        if value_type in STR_TYPES:
            str_index[row] = pieces.add(value.encode())
        elif value_type == BYTES:
            blob_index[row] = pieces.add(value)
        elif value_type == INT:
            ints[row] = value
        elif value_type == DOUBLE:
            doubles[row] = value
        elif value_type == BOOL:
            bools[row] = value


def _utf8(arr: pa.Array, what: str) -> pa.Array:
    """Protobuf strings must be UTF-8; the fast path copied bytes unchecked, so check them here."""
    try:
        arr.validate(full=True)
    except pa.ArrowInvalid:
        raise FormatError(f"an attribute {what} is not valid UTF-8") from None
    return arr
