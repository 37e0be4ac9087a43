"""Tag matching (``tests/storage/matching.py``) over a whole span table at once, with pyarrow compute.

``matching.py`` is the specification, one span at a time in Python; converting every span's nested
attributes to Python costs seconds per 100k spans. Here each attribute list is flattened once and
compared column-wise. Attributes of the simple types (string, bool, int, double) are decided here;
for the rest (bytes, arrays, maps, empty values: rare in practice) a row is only marked "maybe" and
the caller confirms it with ``matching.span_matches_tags``. So the Python code stays the one source of
truth, and ``tests/storage/test_tag_masks.py`` checks the two agree.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from spanlake.storage.schema import ValueType
from tests.storage.matching import RESOURCE_PREFIX, field_test, parse_float, parse_int

_COMPLEX_TYPES = pa.array([ValueType.EMPTY, ValueType.BYTES, ValueType.ARRAY, ValueType.KVLIST], pa.int8())


@dataclass
class TagMask:
    """Per row: ``sure`` the tags certainly all hold; ``maybe`` they may, pending a Python check."""

    sure: np.ndarray
    maybe: np.ndarray


def tags_mask(table: pa.Table, tags: Mapping[str, str]) -> TagMask:
    """Which rows of ``table`` (``SPAN_SCHEMA`` columns) satisfy every tag."""
    sure = np.ones(table.num_rows, dtype=bool)
    possible = np.ones(table.num_rows, dtype=bool)
    for key, value in tags.items():
        one = tag_mask(table, key, value)
        sure &= one.sure
        possible &= one.sure | one.maybe
    return TagMask(sure, possible & ~sure)


def tag_mask(table: pa.Table, key: str, value: str) -> TagMask:
    test = field_test(key, value)
    n = table.num_rows
    if test is not None:
        if test.value is None:
            return TagMask(np.zeros(n, dtype=bool), np.zeros(n, dtype=bool))
        compare = pc.not_equal if test.negate else pc.equal
        return TagMask(_numpy(compare(table.column(test.column), test.value)), np.zeros(n, dtype=bool))
    sure, maybe = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    levels = _levels(table, key)
    if key.startswith(RESOURCE_PREFIX):
        key = key[len(RESOURCE_PREFIX):]
    for attributes, rows in levels:
        hit, unsure = _attribute_hits(attributes, key, value)
        sure[rows[hit]] = True
        maybe[rows[unsure]] = True
    return TagMask(sure, maybe & ~sure)


def _levels(table: pa.Table, key: str) -> Iterator[tuple[pa.StructArray, np.ndarray]]:
    """The flattened attributes a key is searched in, each with the table row of every attribute."""
    if key.startswith(RESOURCE_PREFIX):
        yield _flatten(_array(table, "resource_attributes"))
        return
    for column in ("span_attributes", "resource_attributes", "scope_attributes"):
        yield _flatten(_array(table, column))
    for column in ("events", "links"):
        items, item_rows = _flatten(_array(table, column))
        attributes, attribute_items = _flatten(_child(items, "attributes"))
        yield attributes, item_rows[attribute_items]


def _attribute_hits(attributes: pa.StructArray, key: str, value: str) -> tuple[np.ndarray, np.ndarray]:
    """Per attribute: certainly ``key`` reading as ``value``; or ``key`` with a type decided in Python."""
    kind = _child(attributes, "type")

    def typed(value_type: ValueType, member: str, wanted: object) -> pa.Array:
        # Kleene logic: the members other than ``type``'s are null, and null must not spread.
        return pc.and_kleene(pc.equal(kind, int(value_type)), pc.equal(_child(attributes, member), wanted))

    hits = [typed(ValueType.STRING, "str", value)]
    if value in ("true", "false"):
        hits.append(typed(ValueType.BOOL, "bool", value == "true"))
    integer = parse_int(value)
    if integer is not None and -(2**63) <= integer < 2**63:
        hits.append(typed(ValueType.INT, "int", integer))
    number = parse_float(value)
    if number is not None:
        hits.append(typed(ValueType.DOUBLE, "double", number))
    elif value == "NaN":  # the one double whose text does not parse back to an equal number
        hits.append(pc.and_kleene(pc.equal(kind, int(ValueType.DOUBLE)),
                                  pc.is_nan(_child(attributes, "double"))))
    hit = hits[0]
    for other in hits[1:]:
        hit = pc.or_kleene(hit, other)
    keyed = pc.equal(_child(attributes, "key"), key)
    unsure = pc.is_in(kind, _COMPLEX_TYPES)
    return _numpy(pc.and_kleene(keyed, hit)), _numpy(pc.and_kleene(keyed, unsure))


def _array(table: pa.Table, column: str) -> pa.Array:
    return table.column(column).combine_chunks()


def _flatten(lists: pa.Array) -> tuple[pa.StructArray, np.ndarray]:
    """The items of a list array and, for each, the index of the list it came from."""
    items = lists.flatten()
    parents = pc.list_parent_indices(lists).to_numpy(zero_copy_only=False)
    return items, parents


def _child(structs: pa.StructArray, name: str) -> pa.Array:
    # ``flatten`` (not ``field``) applies the struct array's own offset and validity.
    return structs.flatten()[structs.type.get_field_index(name)]


def _numpy(mask: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A boolean mask as numpy, nulls (e.g. a null member) counting as false."""
    return np.asarray(pc.fill_null(mask, False).to_numpy(zero_copy_only=False), dtype=bool)
