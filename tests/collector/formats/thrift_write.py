"""Thrift writers (binary and compact) for the typed form described in ``collector.formats.thrift``.

A struct is ``dict[int, tuple[TType, value]]`` (fields written in id order); a list or set value is
``(element TType, [values])``; a map value is ``(key TType, value TType, dict)``; strings may be
``str`` (UTF-8 encoded) or ``bytes``. Used by tests and benchmarks to produce real wire bytes, and by
anything that needs to answer in Thrift.
"""

from __future__ import annotations

import struct
from typing import Any

from spanlake.collector.formats.thrift import BINARY_VERSION_1, COMPACT_PROTOCOL_ID, TTYPE_TO_COMPACT, TType

TypedStruct = dict[int, tuple[TType, Any]]


def _text(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else bytes(value)


class BinaryWriter:
    def __init__(self) -> None:
        self.out = bytearray()

    def value(self, t: TType, v: Any) -> None:
        o = self.out
        if t == TType.BOOL:
            o.append(1 if v else 0)
        elif t == TType.BYTE:
            o += struct.pack(">b", v)
        elif t == TType.I16:
            o += struct.pack(">h", v)
        elif t == TType.I32:
            o += struct.pack(">i", v)
        elif t == TType.I64:
            o += struct.pack(">q", v)
        elif t == TType.DOUBLE:
            o += struct.pack(">d", v)
        elif t == TType.STRING:
            raw = _text(v)
            o += struct.pack(">i", len(raw)) + raw
        elif t == TType.STRUCT:
            self.struct(v)
        elif t in (TType.LIST, TType.SET):
            et, items = v
            o += struct.pack(">bi", et, len(items))
            for item in items:
                self.value(et, item)
        elif t == TType.MAP:
            kt, vt, mapping = v
            o += struct.pack(">bbi", kt, vt, len(mapping))
            for key, val in mapping.items():
                self.value(kt, key)
                self.value(vt, val)
        else:
            raise ValueError(f"cannot write thrift type {t}")

    def struct(self, fields: TypedStruct) -> None:
        for fid in sorted(fields):
            t, v = fields[fid]
            self.out += struct.pack(">bh", t, fid)
            self.value(t, v)
        self.out.append(TType.STOP)


class CompactWriter:
    def __init__(self) -> None:
        self.out = bytearray()

    def varint(self, n: int) -> None:
        while n > 0x7F:
            self.out.append((n & 0x7F) | 0x80)
            n >>= 7
        self.out.append(n)

    def zigzag(self, n: int) -> None:
        self.varint((n << 1) ^ (n >> 63))

    def value(self, t: TType, v: Any) -> None:
        if t == TType.BOOL:
            self.out.append(1 if v else 2)
        elif t == TType.BYTE:
            self.out += struct.pack("b", v)
        elif t in (TType.I16, TType.I32, TType.I64):
            self.zigzag(v)
        elif t == TType.DOUBLE:
            self.out += struct.pack("<d", v)
        elif t == TType.STRING:
            raw = _text(v)
            self.varint(len(raw))
            self.out += raw
        elif t == TType.STRUCT:
            self.struct(v)
        elif t in (TType.LIST, TType.SET):
            et, items = v
            c = TTYPE_TO_COMPACT[et]
            if len(items) < 15:
                self.out.append(len(items) << 4 | c)
            else:
                self.out.append(0xF0 | c)
                self.varint(len(items))
            for item in items:
                self.value(et, item)
        elif t == TType.MAP:
            kt, vt, mapping = v
            self.varint(len(mapping))
            if mapping:
                self.out.append(TTYPE_TO_COMPACT[kt] << 4 | TTYPE_TO_COMPACT[vt])
            for key, val in mapping.items():
                self.value(kt, key)
                self.value(vt, val)
        else:
            raise ValueError(f"cannot write thrift type {t}")

    def struct(self, fields: TypedStruct) -> None:
        last = 0
        for fid in sorted(fields):
            t, v = fields[fid]
            c = (1 if v else 2) if t == TType.BOOL else TTYPE_TO_COMPACT[t]
            if 0 < fid - last <= 15:
                self.out.append((fid - last) << 4 | c)
            else:
                self.out.append(c)
                self.zigzag(fid)
            if t != TType.BOOL:  # a bool field's value lives in its header
                self.value(t, v)
            last = fid
        self.out.append(TType.STOP)


def write_binary_struct(fields: TypedStruct) -> bytes:
    w = BinaryWriter()
    w.struct(fields)
    return bytes(w.out)


def write_binary_value(t: TType, value: Any) -> bytes:
    w = BinaryWriter()
    w.value(t, value)
    return bytes(w.out)


def write_compact_struct(fields: TypedStruct) -> bytes:
    w = CompactWriter()
    w.struct(fields)
    return bytes(w.out)


def write_binary_message(name: str, mtype: int, seqid: int, args: TypedStruct) -> bytes:
    """A strict TBinaryProtocol message envelope around ``args``."""
    w = BinaryWriter()
    w.out += struct.pack(">i", (BINARY_VERSION_1 | mtype) - (1 << 32))
    w.value(TType.STRING, name)
    w.out += struct.pack(">i", seqid)
    w.struct(args)
    return bytes(w.out)


def write_compact_message(name: str, mtype: int, seqid: int, args: TypedStruct) -> bytes:
    w = CompactWriter()
    w.out += bytes([COMPACT_PROTOCOL_ID, (mtype << 5) | 1])
    w.varint(seqid)
    w.value(TType.STRING, name)
    w.struct(args)
    return bytes(w.out)
