"""Build ``ATTRIBUTES`` list columns (span schema) without a Python dict per attribute.

``TypedAttrs`` collects already-typed values (the OTLP/JSON path, and resources / scopes, which are
few); ``collector/formats/otlp_attrs.py`` decodes serialized protobuf ``KeyValue`` messages in bulk.
Both end in ``attribute_struct``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from spanlake.storage.schema import ATTRIBUTE, ATTRIBUTES, ValueType

FIELDS = list(ATTRIBUTE)
# Which value types store their value in each member of the ATTRIBUTE struct.
# Plain ints: enum member lookups cost microseconds on a path run per request.
EMPTY, STRING, BOOL, INT, DOUBLE, BYTES, ARRAY, KVLIST = (int(t) for t in ValueType)
STR_TYPES = (STRING, ARRAY, KVLIST)


def str_mask(types: npt.NDArray[np.int8]) -> npt.NDArray[np.bool_]:
    """Which attributes keep their value in the ``str`` member (STRING, ARRAY, KVLIST)."""
    mask: npt.NDArray[np.bool_] = (types == STRING) | (types >= ARRAY)
    return mask


def list_column(offsets: list[int] | npt.NDArray[np.int32], values: pa.Array, list_type: pa.DataType
                ) -> pa.Array:
    """A list column from offsets (one more than rows) and the flattened values."""
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values, type=list_type)


def spread(dense: pa.Array, mask: npt.NDArray[np.bool_]) -> pa.Array:
    """``dense`` (one value per true in ``mask``) placed at the true positions; null elsewhere."""
    if len(dense) == 0:
        return pa.nulls(len(mask), dense.type)
    if mask.all():
        return dense
    indices = np.cumsum(mask, dtype=np.int64) - 1
    return dense.take(pa.array(indices, mask=~mask))


def attribute_struct(keys: pa.Array, types: npt.NDArray[np.int8], strs: pa.Array, ints: pa.Array,
                     doubles: pa.Array, bools: pa.Array, blobs: pa.Array) -> pa.StructArray:
    """The ATTRIBUTE struct array from its member arrays (each as long as ``keys``)."""
    return pa.StructArray.from_arrays(
        [keys, pa.array(types, pa.int8()), strs, ints, doubles, bools, blobs], fields=FIELDS
    )


class TypedAttrs:
    """Attributes as (key, type, value); ``end_row`` closes one row's list."""

    def __init__(self) -> None:
        self.offsets: list[int] = [0]
        self.keys: list[str] = []
        self.types: list[int] = []
        # Dense value lists, one per struct member, in attribute order.
        self.strs: list[str] = []
        self.ints: list[int] = []
        self.doubles: list[float] = []
        self.bools: list[bool] = []
        self.blobs: list[bytes] = []
        self._sinks: dict[int, Any] = {
            ValueType.STRING: self.strs.append,
            ValueType.ARRAY: self.strs.append,
            ValueType.KVLIST: self.strs.append,
            ValueType.INT: self.ints.append,
            ValueType.DOUBLE: self.doubles.append,
            ValueType.BOOL: self.bools.append,
            ValueType.BYTES: self.blobs.append,
        }

    def add(self, key: str, value_type: int, value: Any) -> None:
        self.keys.append(key)
        self.types.append(value_type)
        if value_type != EMPTY:
            self._sinks[value_type](value)

    def end_row(self) -> None:
        self.offsets.append(len(self.keys))

    def struct(self) -> pa.StructArray:
        types = np.array(self.types, dtype=np.int8)
        return attribute_struct(
            pa.array(self.keys, pa.string()),
            types,
            spread(pa.array(self.strs, pa.string()), str_mask(types)),
            spread(pa.array(self.ints, pa.int64()), types == INT),
            spread(pa.array(self.doubles, pa.float64()), types == DOUBLE),
            spread(pa.array(self.bools, pa.bool_()), types == BOOL),
            spread(pa.array(self.blobs, pa.binary()), types == BYTES),
        )

    def column(self) -> pa.Array:
        return list_column(self.offsets, self.struct(), ATTRIBUTES)
