"""Per-segment Bloom filter of attribute ``key=value`` pairs, so a tag search skips whole segments.

A tag ``k=v`` can only match a span of a segment whose filter holds the string pair ``k\\0v``, or the
marker ``k\\1`` that stands for "k has a non-string value here" (ints, doubles, bools, bytes and
containers match by value, not by text, so those keys are never pruned on their value). Every level
(span, resource, scope, event, link attributes) goes into the one filter. A false positive only
costs a scan; a false negative is impossible.
"""

from __future__ import annotations

import hashlib
import math
import struct

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from spanlake.storage.schema import ValueType

_FALSE_POSITIVE_RATE = 0.01
# Past this many distinct pairs (high-cardinality attributes such as URLs or IDs) the filter would
# cost more bytes than the scans it saves: the segment then has none and is always scanned.
MAX_ITEMS = 2_000_000
_HEADER = struct.Struct("<II")  # hash count, bit count
_ATTRIBUTE_COLUMNS = ("span_attributes", "resource_attributes", "scope_attributes")


class Bloom:
    def __init__(self, bits: np.ndarray, hashes: int) -> None:
        self.bits = bits
        self.hashes = hashes
        self.nbits = len(bits) * 8

    @classmethod
    def build(cls, items: list[bytes]) -> Bloom:
        n = max(1, len(items))
        nbits = max(64, math.ceil(-n * math.log(_FALSE_POSITIVE_RATE) / math.log(2) ** 2))
        hashes = max(1, round(nbits / n * math.log(2)))
        bloom = cls(np.zeros((nbits + 7) // 8, dtype=np.uint8), hashes)
        if items:
            positions = bloom._positions(items).ravel()
            np.bitwise_or.at(bloom.bits, positions >> 3, (1 << (positions & 7)).astype(np.uint8))
        return bloom

    def may_contain(self, item: bytes) -> bool:
        positions = self._positions([item]).ravel()
        return bool(np.all(self.bits[positions >> 3] & (1 << (positions & 7)).astype(np.uint8)))

    def to_bytes(self) -> bytes:
        return _HEADER.pack(self.hashes, self.nbits) + self.bits.tobytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> Bloom:
        hashes, _ = _HEADER.unpack_from(data)
        return cls(np.frombuffer(data, dtype=np.uint8, offset=_HEADER.size), hashes)

    def _positions(self, items: list[bytes]) -> np.ndarray:
        """Bit positions, one row per item (double hashing on one 64-bit blake2b digest)."""
        digests = b"".join(hashlib.blake2b(i, digest_size=8).digest() for i in items)
        halves = np.frombuffer(digests, dtype="<u4").reshape(-1, 2).astype(np.uint64)
        steps = np.arange(self.hashes, dtype=np.uint64)
        return (halves[:, :1] + steps * (halves[:, 1:] | np.uint64(1))) % np.uint64(self.nbits)


def string_pair(key: str, value: str) -> bytes:
    return key.encode() + b"\0" + value.encode()


def typed_key(key: str) -> bytes:
    return key.encode() + b"\1"


def attribute_items(spans: pa.Table) -> list[bytes] | None:
    """Distinct filter items of every attribute of ``spans``; None past ``MAX_ITEMS``."""
    lists = [spans.column(c).combine_chunks() for c in _ATTRIBUTE_COLUMNS]
    for column, field in (("events", "attributes"), ("links", "attributes")):
        nested = pc.list_flatten(spans.column(column).combine_chunks())
        lists.append(pc.struct_field(nested, field))
    items: set[bytes] = set()
    for attrs in lists:
        flat = pc.list_flatten(attrs)
        if len(flat) == 0:
            continue
        keys, types = pc.struct_field(flat, "key"), pc.struct_field(flat, "type")
        is_string = pc.equal(types, ValueType.STRING)
        items.update(_distinct_pairs(pc.filter(keys, is_string),
                                     pc.filter(pc.struct_field(flat, "str"), is_string)))
        others = pc.unique(pc.filter(keys, pc.invert(is_string))).to_pylist()
        items.update(typed_key(k) for k in others)
        if len(items) > MAX_ITEMS:
            return None
    return list(items)


def _distinct_pairs(keys: pa.Array, values: pa.Array) -> set[bytes]:
    """Distinct ``key\0value`` items. Dictionary-encodes each side and deduplicates integer pairs:
    measured ~5x cheaper than joining 1M strings and hashing the results."""
    if len(keys) == 0:
        return set()
    k, v = pc.dictionary_encode(keys), pc.dictionary_encode(values)
    width = len(v.dictionary)
    pair_codes = k.indices.to_numpy().astype(np.int64) * width + v.indices.to_numpy()
    space = len(k.dictionary) * width
    if space <= 8 * len(pair_codes):  # small code space: mark presence, no hashing or sorting
        seen = np.zeros(space, dtype=bool)
        seen[pair_codes] = True
        codes = np.flatnonzero(seen)
    else:
        codes = np.unique(pair_codes)
    key_text = [x.encode() for x in k.dictionary.to_pylist()]
    value_text = [x.encode() for x in v.dictionary.to_pylist()]
    return {key_text[c // width] + b"\0" + value_text[c % width] for c in codes.tolist()}
