"""A protobuf wire-format scanner over many records at once, with numpy.

``scan`` splits every record (a byte range of one buffer) into its top-level fields. It advances all
records together, one field per round, so the Python work is per round (about as many rounds as the
longest record has fields), not per record or per field. Field values are then picked per field number
with array indexing. This is what turns a request of 1,000 spans into columns without a Python loop
over spans (a loop costs a few microseconds per span in CPython with upb messages).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar, cast

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from spanlake.collector.formats.errors import FormatError

I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]
U8 = npt.NDArray[np.uint8]
Mask = npt.NDArray[np.bool_]
G = TypeVar("G", bound=np.generic)

VARINT, I64_WIRE, LEN, I32_WIRE = 0, 1, 2, 5
PAD = 16  # zero bytes after the data, so a 10-byte varint read never leaves the buffer
_POS = np.arange(10)
_SHIFTS = (7 * _POS).astype(np.uint64)
# Payload size of fixed-size wire types (1: 64-bit, 5: 32-bit); -1 marks the group / invalid types.
_FIXED_SIZE = np.array([0, 8, 0, -1, -1, 4, -1, -1], np.int64)


def _long_varints(buf: U8, pos: I64) -> tuple[U64, I64]:
    raw = buf[pos[:, None] + _POS]
    last = raw < 0x80
    size = np.argmax(last, axis=1) + 1
    size[~last.any(axis=1)] = 0
    parts = (raw & 0x7F).astype(np.uint64) << _SHIFTS
    parts[_POS >= size[:, None]] = 0
    return np.bitwise_or.reduce(parts, axis=1), size.astype(np.int64)


@dataclass
class Fields:
    """Every field of every record, sorted by position (so by record, then by order in the record)."""

    record: I64  # which record (index into the scanned starts)
    number: I64  # field number
    wire: I64  # wire type
    start: I64  # payload start (after the length prefix for LEN fields)
    length: I64  # payload bytes
    value: U64  # the value of a VARINT field

    def where(self, number: int, wire: int) -> I64:
        """Positions (into these arrays) of the occurrences of one field."""
        found: I64 = ((self.number == number) & (self.wire == wire)).nonzero()[0]
        return found

    def pick(self, column: npt.NDArray[G], at: I64) -> npt.NDArray[G]:
        """``column[at]``, zero where ``at`` is -1 (field absent)."""
        if len(column) == 0:
            return np.zeros(len(at), column.dtype)
        out: npt.NDArray[G] = np.where(at >= 0, column[at], column.dtype.type(0))
        return out

    def last(self, n: int, number: int, wire: int) -> I64:
        """Per record, the position of the field's last occurrence (protobuf: last one wins), or -1."""
        out = np.full(n, -1, np.int64)
        at = self.where(number, wire)
        records = self.record[at]
        # Positions ascend, so a record's last occurrence is where the next one is another record's.
        # (Assigning with repeated indices would leave the winner unspecified.)
        last = np.ones(len(at), np.bool_)
        last[:-1] = records[1:] != records[:-1]
        out[records[last]] = at[last]
        return out


def scan(buf: U8, starts: I64, ends: I64, what: str) -> Fields:
    """The top-level fields of the records ``buf[starts[i]:ends[i]]``; ``what`` names them in errors.

    ``buf`` must extend ``PAD`` zero bytes past the last record.
    """
    chunks: list[tuple[I64, ...]] = []
    rec = (starts < ends).nonzero()[0]
    pos, end = starts[rec], ends[rec]
    while len(rec):
        if len(rec) <= _FEW:
            # A round costs the same however few records are left: a few long records (one span
            # with thousands of attributes) would take thousands of rounds. Finish them in Python.
            chunks.append(_scan_each(buf, rec, pos, end, starts, what))
            break
        number, wire, start, length, value = _round(buf, pos)
        nxt = start + length
        bad = (length < 0) | (nxt > end) | (number == 0)
        if bad.any():
            i = int(bad.nonzero()[0][0])
            raise FormatError(
                f"{what} {int(rec[i])}: malformed protobuf at byte {int(pos[i] - starts[rec[i]])} "
                "(bad tag, wire type or length, or truncated)"
            )
        chunks.append((rec, number, wire, start, length, value, pos))
        more = nxt < end
        rec, pos, end = rec[more], nxt[more], end[more]
    if not chunks:
        empty = np.zeros(0, np.int64)
        return Fields(empty, empty, empty, empty, empty, np.zeros(0, np.uint64))
    cols = [np.concatenate(parts) for parts in zip(*chunks, strict=True)]
    order = np.argsort(cols[6], kind="stable")
    record, number, wire, start, length, value = (col[order] for col in cols[:6])
    return Fields(record, number, wire, start, length, value.astype(np.int64).view(np.uint64))


def _round(buf: U8, pos: I64) -> tuple[I64, I64, I64, I64, I64]:
    """One field of each record at ``pos``: number, wire type, payload start and length, and the
    value of a VARINT field (its 64 bits in an int64). A length of -1 marks a malformed field.

    Written for the common case (one-byte tags, one-byte lengths and small varints) with the
    general varint decoding applied only to the rows that need it: this runs once per field
    position for the whole request, so every numpy call here counts.
    """
    first = buf[pos]
    tag = first.astype(np.int64)
    after = pos + 1
    long_tag = (first >= 0x80).nonzero()[0]
    if len(long_tag):
        value, size = _long_varints(buf, pos[long_tag])
        tag[long_tag] = np.where(size > 0, value.astype(np.int64), 0)  # tag 0: field number 0, bad
        after[long_tag] = pos[long_tag] + size
    wire, number = tag & 7, tag >> 3
    is_len, is_varint = wire == LEN, wire == VARINT
    second = buf[after].astype(np.int64)  # a varint's or length prefix's first byte
    length = np.where(is_len, second, np.where(is_varint, 1, _FIXED_SIZE[wire]))
    start = after + is_len
    value = np.where(is_varint, second, 0)
    longer = ((second >= 0x80) & (is_len | is_varint)).nonzero()[0]
    if len(longer):
        big, size = _long_varints(buf, after[longer])
        ok = size > 0
        as_len = is_len[longer]
        length[longer] = np.where(ok, np.where(as_len, big.astype(np.int64), size), -1)
        start[longer] = np.where(as_len, after[longer] + size, after[longer])
        value[longer] = np.where(as_len, 0, big.astype(np.int64))
    return cast(tuple[I64, I64, I64, I64, I64], (number, wire, start, length, value))


_FEW = 48  # below this many records, the Python loop beats a numpy round


def _scan_each(buf: U8, rec: I64, pos: I64, end: I64, starts: I64, what: str) -> tuple[I64, ...]:
    """``scan``'s result for a few records, one field at a time (one-byte cases inlined)."""
    data = buf.data
    out: list[tuple[int, int, int, int, int, int, int]] = []
    add = out.append
    for r, p, e in zip(rec.tolist(), pos.tolist(), end.tolist(), strict=True):
        while p < e:
            at = p
            tag = data[p]
            p += 1
            if tag >= 0x80:
                tag, p = _varint(data, at)
            wire, value, start = tag & 7, 0, p
            if wire == LEN:
                size = data[p]
                p += 1
                if size >= 0x80:
                    size, p = _varint(data, p - 1)
                start = p
                p = p + size if p >= 0 else -1
            elif wire == VARINT:
                value = data[p]
                p += 1
                if value >= 0x80:
                    value, p = _varint(data, p - 1)
            elif wire in (I64_WIRE, I32_WIRE):
                p += 8 if wire == I64_WIRE else 4
            else:
                p = -1
            if tag <= 7 or p < 0 or p > e:  # field number 0, bad wire type or varint, overrun
                raise FormatError(f"{what} {r}: malformed protobuf at byte {at - int(starts[r])} "
                                  "(bad tag, wire type or length, or truncated)")
            add((r, tag >> 3, wire, start, p - start, value, at))
    columns = list(zip(*out, strict=True)) if out else [()] * 7
    # Varint values may exceed int64 (uint64 fields, negative int32 enums): keep them unsigned.
    return tuple(np.array(col, np.uint64 if i == 5 else np.int64) for i, col in enumerate(columns))


def _varint(data: memoryview, p: int) -> tuple[int, int]:
    value = shift = 0
    for i in range(p, p + 10):
        byte = data[i]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value & 0xFFFFFFFFFFFFFFFF, i + 1
        shift += 7
    return -1, -1  # longer than 10 bytes: malformed


def fixed(buf: U8, start: I64, size: int) -> npt.NDArray[np.uint8]:
    """``size`` bytes at each start, as rows of a matrix."""
    rows: npt.NDArray[np.uint8] = buf[start[:, None] + np.arange(size)]
    return rows


def binary_column(buf: U8, data: pa.Buffer, start: I64, length: I64, present: Mask,
                  arrow_type: pa.DataType) -> pa.Array:
    """A binary/string column of byte ranges of ``buf`` (ascending, non-overlapping); "" if absent.

    The ranges and the gaps between them cut the buffer into consecutive pieces: a zero-copy Arrow
    array over it, from which one ``take`` copies the wanted pieces.
    """
    n = len(start)
    begin = np.where(present, start, 0)
    size = np.where(present, length, 0)
    # Absent rows get an empty piece at the previous piece's end, keeping the bounds ascending.
    stop = np.maximum.accumulate(begin + size) if n else begin
    begin = np.where(present, begin, stop)
    bounds = np.empty(2 * n + 2, np.int64)
    bounds[0] = 0
    bounds[1:-1:2], bounds[2:-1:2] = begin, begin + size
    bounds[-1] = len(buf)
    pieces = pa.Array.from_buffers(
        arrow_type, 2 * n + 1, [None, pa.py_buffer(bounds.astype(np.int32)), data]
    )
    return pieces.take(pa.array(2 * np.arange(n, dtype=np.int32) + 1))
