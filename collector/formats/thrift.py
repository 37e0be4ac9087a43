"""A small, schema-less Apache Thrift codec: the binary and compact protocols, read and write.

Reading is generic: a struct becomes a ``dict`` of field id -> value, so no IDL is needed and the same
code decodes Jaeger batches, ``Agent.emitBatch`` messages and Zipkin v1 Thrift spans. Values decode as
bool -> ``bool``; byte/i16/i32/i64 -> ``int``; double -> ``float``; string/binary -> ``bytes`` (the
caller decides what is text); struct -> ``dict[int, Any]``; list/set -> ``list``; map -> ``dict``.

Writing needs the wire types the generic form lost, so it takes a typed form: a struct is a
``dict[int, tuple[TType, value]]``, a list is ``(element TType, [values])``, a map is
``(key TType, value TType, dict)``.

How to call it, e.g. for Zipkin v1 (a bare TBinaryProtocol ``list<Span>``)::

    from spanlake.collector.formats.thrift import TType, read_binary_value
    spans = read_binary_value(body, TType.LIST)       # list of dict[int, Any]
    trace_id_low = spans[0][1]                         # zipkincore Span field 1

or ``read_binary_struct(body)`` / ``read_compact_struct(body)`` for one struct, and
``read_binary_message`` / ``read_compact_message`` for an RPC envelope (``Agent.emitBatch``).
Every reader raises ``FormatError`` on truncated or malformed input: lengths are checked against the
bytes that remain (so a forged length cannot allocate), nesting is capped, and parsing always advances.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import Any

from spanlake.collector.formats.errors import FormatError

# Deeper nesting than this is not a real payload (Jaeger's deepest is 4) and would only burn stack.
MAX_DEPTH = 64


class TType(enum.IntEnum):
    """Thrift's wire type ids (binary protocol numbering; compact has its own, mapped below)."""

    STOP = 0
    BOOL = 2
    BYTE = 3
    DOUBLE = 4
    I16 = 6
    I32 = 8
    I64 = 10
    STRING = 11
    STRUCT = 12
    MAP = 13
    SET = 14
    LIST = 15


class MessageType(enum.IntEnum):
    CALL = 1
    REPLY = 2
    EXCEPTION = 3
    ONEWAY = 4


@dataclass(frozen=True)
class Message:
    """An RPC envelope: method name, message type, sequence id and the argument struct."""

    name: str
    type: int
    seqid: int
    args: dict[int, Any]


# Compact protocol type ids. BOOL_TRUE/BOOL_FALSE double as the BOOL type inside containers.
_C_BOOL_TRUE, _C_BOOL_FALSE = 1, 2
_COMPACT_TO_TTYPE = {
    1: TType.BOOL, 2: TType.BOOL, 3: TType.BYTE, 4: TType.I16, 5: TType.I32, 6: TType.I64,
    7: TType.DOUBLE, 8: TType.STRING, 9: TType.LIST, 10: TType.SET, 11: TType.MAP, 12: TType.STRUCT,
}
TTYPE_TO_COMPACT = {
    TType.BOOL: 1, TType.BYTE: 3, TType.I16: 4, TType.I32: 5, TType.I64: 6, TType.DOUBLE: 7,
    TType.STRING: 8, TType.LIST: 9, TType.SET: 10, TType.MAP: 11, TType.STRUCT: 12,
}
# Indexed by compact type id (0..15); None for ids the protocol does not define.
_COMPACT_TYPES: list[TType | None] = [_COMPACT_TO_TTYPE.get(c) for c in range(16)]
COMPACT_PROTOCOL_ID = 0x82
_COMPACT_VERSION = 1
BINARY_VERSION_1 = 0x80010000


_VALID_TYPES = frozenset(int(t) for t in TType)
_I16, _I32, _I64, _F64 = struct.Struct(">h"), struct.Struct(">i"), struct.Struct(">q"), struct.Struct(">d")
_F64_LE = struct.Struct("<d")


def _ttype(value: int, where: int) -> int:
    if value not in _VALID_TYPES:
        raise FormatError(f"thrift: unknown field type {value} at byte {where}")
    return value


class _Reader:
    """Bounds-checked cursor over a buffer; shared by both protocol readers."""

    def __init__(self, data: bytes) -> None:
        self.data = bytes(data)
        self.end = len(self.data)
        self.pos = 0

    def truncated(self, n: int) -> FormatError:
        return FormatError(f"thrift: truncated input: need {n} bytes at byte {self.pos}, "
                           f"{self.end - self.pos} left")

    def take(self, n: int) -> bytes:
        pos = self.pos
        if n < 0 or pos + n > self.end:
            raise self.truncated(n)
        self.pos = pos + n
        return self.data[pos:pos + n]

    def byte(self) -> int:
        pos = self.pos
        if pos >= self.end:
            raise self.truncated(1)
        self.pos = pos + 1
        return self.data[pos]

    def remaining(self) -> int:
        return self.end - self.pos

    def check_count(self, n: int, what: str) -> int:
        # Every element takes at least one byte, so a count above the remaining bytes is a lie.
        if n < 0 or n > self.end - self.pos:
            raise FormatError(f"thrift: {what} size {n} at byte {self.pos} exceeds the "
                              f"{self.remaining()} bytes left")
        return n


class BinaryReader(_Reader):
    """TBinaryProtocol: big-endian fixed-width integers, i32 length prefixes.

    The hot path (structs of strings and integers) reads with ``unpack_from`` and checks bounds
    inline: this is where ingest spends its time."""

    def fixed(self, s: struct.Struct) -> Any:
        pos = self.pos
        if pos + s.size > self.end:
            raise self.truncated(s.size)
        self.pos = pos + s.size
        return s.unpack_from(self.data, pos)[0]

    def value(self, t: int, depth: int = 0) -> Any:
        if t == TType.STRING:
            n = self.fixed(_I32)
            pos = self.pos
            if n < 0 or pos + n > self.end:
                raise FormatError(f"thrift: string size {n} at byte {pos} exceeds the "
                                  f"{self.end - pos} bytes left")
            self.pos = pos + n
            return self.data[pos:pos + n]
        if t == TType.I64:
            return self.fixed(_I64)
        if t == TType.I32:
            return self.fixed(_I32)
        if depth > MAX_DEPTH:
            raise FormatError(f"thrift: nesting deeper than {MAX_DEPTH} at byte {self.pos}")
        if t == TType.STRUCT:
            return self.struct(depth)
        if t in (TType.LIST, TType.SET):
            et = _ttype(self.byte(), self.pos - 1)
            n = self.check_count(self.fixed(_I32), "list")
            return [self.value(et, depth + 1) for _ in range(n)]
        if t == TType.BOOL:
            return self.byte() != 0
        if t == TType.DOUBLE:
            return self.fixed(_F64)
        if t == TType.I16:
            return self.fixed(_I16)
        if t == TType.BYTE:
            b = self.byte()
            return b - 256 if b > 127 else b
        if t == TType.MAP:
            kt, vt = _ttype(self.byte(), self.pos - 1), _ttype(self.byte(), self.pos - 1)
            n = self.check_count(self.fixed(_I32), "map")
            return _make_map([(self.value(kt, depth + 1), self.value(vt, depth + 1)) for _ in range(n)])
        raise FormatError(f"thrift: unexpected type {t} at byte {self.pos}")

    def i32(self) -> int:
        return int(self.fixed(_I32))

    def struct(self, depth: int = 0) -> dict[int, Any]:
        out: dict[int, Any] = {}
        data, end = self.data, self.end
        while True:
            pos = self.pos
            if pos >= end:
                raise self.truncated(1)
            t = data[pos]
            if t == 0:  # STOP
                self.pos = pos + 1
                return out
            if t not in _VALID_TYPES:
                raise FormatError(f"thrift: unknown field type {t} at byte {pos}")
            if pos + 3 > end:
                raise self.truncated(3)
            self.pos = pos + 3
            out[_I16.unpack_from(data, pos + 1)[0]] = self.value(t, depth + 1)

    def message(self) -> Message:
        first = self.i32()
        if first < 0:  # strict: version word, then name
            if first & 0xFFFF0000 != BINARY_VERSION_1:
                raise FormatError(f"thrift: bad binary protocol version {first & 0xFFFF0000:#x}")
            mtype = first & 0xFF
            name = self.take(self.check_count(self.i32(), "message name"))
        else:  # old non-strict form: name, then type byte
            name = self.take(self.check_count(first, "message name"))
            mtype = self.byte()
        seqid = self.i32()
        return Message(_utf8(name, "message name"), mtype, seqid, self.struct())


class CompactReader(_Reader):
    """TCompactProtocol: zigzag varints, field-id deltas, booleans folded into field headers."""

    def varint(self) -> int:
        data, pos, end = self.data, self.pos, self.end
        b = data[pos] if pos < end else -1
        if 0 <= b < 0x80:  # the common one-byte case
            self.pos = pos + 1
            return b
        result = shift = 0
        for _ in range(10):
            if pos >= end:
                self.pos = pos
                raise self.truncated(1)
            b = data[pos]
            pos += 1
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                self.pos = pos
                return result
            shift += 7
        self.pos = pos
        raise FormatError(f"thrift: varint longer than 10 bytes at byte {pos}")

    def zigzag(self) -> int:
        n = self.varint()
        return (n >> 1) ^ -(n & 1)

    def ctype(self, c: int) -> TType:
        try:
            return _COMPACT_TO_TTYPE[c]
        except KeyError:
            raise FormatError(f"thrift: unknown compact type {c} at byte {self.pos - 1}") from None

    def value(self, t: int, depth: int = 0) -> Any:
        if t == TType.STRING:
            n = self.varint()
            pos = self.pos
            if pos + n > self.end:
                raise FormatError(f"thrift: string size {n} at byte {pos} exceeds the "
                                  f"{self.end - pos} bytes left")
            self.pos = pos + n
            return self.data[pos:pos + n]
        if t == TType.I64 or t == TType.I32 or t == TType.I16:
            return self.zigzag()
        if depth > MAX_DEPTH:
            raise FormatError(f"thrift: nesting deeper than {MAX_DEPTH} at byte {self.pos}")
        if t == TType.STRUCT:
            return self.struct(depth)
        if t in (TType.LIST, TType.SET):
            header = self.byte()
            n = header >> 4
            if n == 15:
                n = self.varint()
            et = self.ctype(header & 0x0F)
            return [self.value(et, depth + 1) for _ in range(self.check_count(n, "list"))]
        if t == TType.BOOL:  # only reached inside containers: one byte, 1 = true
            return self.byte() == _C_BOOL_TRUE
        if t == TType.DOUBLE:
            return _F64_LE.unpack(self.take(8))[0]
        if t == TType.BYTE:
            b = self.byte()
            return b - 256 if b > 127 else b
        if t == TType.MAP:
            n = self.check_count(self.varint(), "map")
            if n == 0:
                return {}
            kv = self.byte()
            kt, vt = self.ctype(kv >> 4), self.ctype(kv & 0x0F)
            return _make_map([(self.value(kt, depth + 1), self.value(vt, depth + 1)) for _ in range(n)])
        raise FormatError(f"thrift: unexpected type {t} at byte {self.pos}")

    def struct(self, depth: int = 0) -> dict[int, Any]:
        out: dict[int, Any] = {}
        last = 0
        data, end = self.data, self.end
        while True:
            pos = self.pos
            if pos >= end:
                raise self.truncated(1)
            header = data[pos]
            self.pos = pos + 1
            if header == 0:
                return out
            delta, c = header >> 4, header & 0x0F
            fid = last + delta if delta else self.zigzag()
            if c == _C_BOOL_TRUE or c == _C_BOOL_FALSE:
                out[fid] = c == _C_BOOL_TRUE
            else:
                t = _COMPACT_TYPES[c]
                if t is None:
                    raise FormatError(f"thrift: unknown compact type {c} at byte {pos}")
                out[fid] = self.value(t, depth + 1)
            last = fid

    def message(self) -> Message:
        if self.byte() != COMPACT_PROTOCOL_ID:
            raise FormatError("thrift: not a compact protocol message (bad protocol id)")
        vt = self.byte()
        if vt & 0x1F != _COMPACT_VERSION:
            raise FormatError(f"thrift: unsupported compact protocol version {vt & 0x1F}")
        seqid = self.varint()
        name = self.take(self.check_count(self.varint(), "message name"))
        return Message(_utf8(name, "message name"), vt >> 5, seqid, self.struct())


def _make_map(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
    try:
        return dict(pairs)
    except TypeError:
        raise FormatError("thrift: map with container keys is not supported") from None


def _utf8(raw: bytes, what: str) -> str:
    try:
        return raw.decode()
    except UnicodeDecodeError:
        raise FormatError(f"thrift: {what} is not valid UTF-8") from None


def _whole(reader: _Reader, value: Any) -> Any:
    if reader.remaining():
        raise FormatError(f"thrift: {reader.remaining()} unexpected bytes after the end at byte {reader.pos}")
    return value


def read_binary_struct(data: bytes) -> dict[int, Any]:
    """One TBinaryProtocol struct that fills ``data`` exactly."""
    r = BinaryReader(data)
    return dict(_whole(r, r.struct()))


def read_binary_value(data: bytes, ttype: TType) -> Any:
    """One TBinaryProtocol value of type ``ttype`` (e.g. ``TType.LIST``) that fills ``data``."""
    r = BinaryReader(data)
    return _whole(r, r.value(ttype))


def read_compact_struct(data: bytes) -> dict[int, Any]:
    """One TCompactProtocol struct that fills ``data`` exactly."""
    r = CompactReader(data)
    return dict(_whole(r, r.struct()))


def read_binary_message(data: bytes) -> Message:
    """A TBinaryProtocol RPC message (strict or old form); trailing bytes are ignored, as servers do."""
    return BinaryReader(data).message()


def read_compact_message(data: bytes) -> Message:
    """A TCompactProtocol RPC message; trailing bytes are ignored, as servers do."""
    return CompactReader(data).message()
