"""Column-at-a-time helpers for turning a span table into JSON-ready Python values.

A 100,000-span trace converted row by row (``Table.to_pylist``) spends seconds building a dict per
span, attribute, event and link; these helpers convert each column in one pass (pyarrow compute or
numpy) and leave only the final assembly of the output objects to Python.
"""

from __future__ import annotations

import base64
import gc
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from spanlake.storage.attributes import AttrRow, attr_as_string
from spanlake.storage.schema import ValueType

Json = dict[str, Any]
JS_MAX_SAFE_INTEGER = 2**53 - 1
_SMALL = 256  # rows: below this, grouping in Python beats a dozen pyarrow compute calls
_TYPE_NAMES = {int(ValueType.STRING): "string", int(ValueType.BOOL): "bool", int(ValueType.INT): "int64",
               int(ValueType.DOUBLE): "float64", int(ValueType.BYTES): "binary"}


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a large result is built: every few hundred new dicts
    would start a collection that walks all the (acyclic) dicts built so far, tripling the time of
    a 100,000-span trace. Reference counting still frees everything; a collection may run after."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def array(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


def hex_ids(column: pa.ChunkedArray | pa.Array, width: int) -> list[str]:
    """A fixed-size binary ID column as lower-case hex, one ``bytes.hex`` call for the whole column;
    nulls are "" (no ID)."""
    ids = array(column)
    n = len(ids)
    if n == 0:
        return []
    data = np.frombuffer(ids.buffers()[1], dtype=np.uint8)[ids.offset * width:(ids.offset + n) * width]
    text = data.tobytes().hex()
    step = 2 * width
    out = [text[i:i + step] for i in range(0, len(text), step)]
    if ids.null_count:
        for i in np.flatnonzero(ids.is_null().to_numpy(zero_copy_only=False)):
            out[i] = ""
    return out


def jaeger_trace_ids(column: pa.ChunkedArray | pa.Array) -> list[str]:
    """Trace IDs in Jaeger v1 form: 16 hex characters when the high half is zero, else 32."""
    return [t[16:] if t.startswith("0000000000000000") else t for t in hex_ids(column, 16)]


def ints(column: pa.ChunkedArray | pa.Array) -> npt.NDArray[np.int64]:
    values: npt.NDArray[np.int64] = np.asarray(array(column).to_numpy(zero_copy_only=False), dtype=np.int64)
    return values


def list_offsets(column: pa.ChunkedArray | pa.Array) -> npt.NDArray[np.int64]:
    """Where each row's items start in the flattened list column (length rows + 1, from 0)."""
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    parts = [np.zeros(1, dtype=np.int64)]
    end = 0
    for chunk in chunks:  # per chunk: combining the chunks would copy every list's items
        offsets = np.asarray(chunk.offsets.to_numpy(zero_copy_only=False), dtype=np.int64)
        parts.append(offsets[1:] - offsets[0] + end)
        end = int(parts[-1][-1]) if len(parts[-1]) else end
    from_zero: npt.NDArray[np.int64] = np.concatenate(parts)
    return from_zero


def attribute_tags(column: pa.ChunkedArray | pa.Array) -> tuple[list[Json], list[str]]:
    """Every attribute of a list-of-``ATTRIBUTE`` column, flattened in row order, as a Jaeger UI
    key/value, with the keys alone; ``list_offsets`` splits them per row."""
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    tags: list[Json] = []
    keys: list[str] = []
    for chunk in chunks:  # per chunk: combining the chunks would copy every attribute
        chunk_tags, chunk_keys = _flat_attribute_tags(chunk.flatten())
        tags += chunk_tags
        keys += chunk_keys
    return tags, keys


def _flat_attribute_tags(flat: pa.StructArray) -> tuple[list[Json], list[str]]:
    if len(flat) == 0:
        return [], []
    fields = dict(zip(("key", "type", "str", "int", "double", "bool", "bytes"), flat.flatten(), strict=True))
    keys: list[str] = fields["key"].to_pylist()
    types = fields["type"].to_numpy(zero_copy_only=False)
    values: list[Any] = fields["str"].to_pylist()  # right for strings, the common case
    names: list[str] = ["string"] * len(keys)
    for t in np.unique(types):
        if int(t) == ValueType.STRING:
            continue
        where = np.flatnonzero(types == t)
        convert = _CONVERTERS.get(int(t))
        if convert is not None:
            member = {ValueType.BOOL: "bool", ValueType.INT: "int", ValueType.DOUBLE: "double",
                      ValueType.BYTES: "bytes"}[ValueType(int(t))]
            picked = fields[member].take(pa.array(where)).to_pylist()
            name = _TYPE_NAMES[int(t)]
            for i, value in zip(where.tolist(), picked, strict=True):
                values[i], names[i] = convert(value), name
        else:  # empty, arrays and maps: their text, as attr_as_string writes it (rare)
            rows: list[AttrRow] = flat.take(pa.array(where)).to_pylist()
            for i, row in zip(where.tolist(), rows, strict=True):
                values[i] = attr_as_string(row)
    tags = [{"key": k, "type": n, "value": v} for k, n, v in zip(keys, names, values, strict=True)]
    return tags, keys


def _int_value(value: int) -> int | str:
    # JavaScript numbers lose precision past 2^53 (jaeger's jsMaxSafeInteger); send those as text.
    return str(value) if abs(value) > JS_MAX_SAFE_INTEGER else value


def _double_value(value: float) -> float | str:
    # JSON has no NaN or infinity; their Go text keeps the response parseable.
    if math.isfinite(value):
        return value
    return attr_as_string({"type": ValueType.DOUBLE, "double": value})


_CONVERTERS: dict[int, Callable[[Any], Any]] = {
    int(ValueType.BOOL): bool,
    int(ValueType.INT): _int_value,
    int(ValueType.DOUBLE): _double_value,
    int(ValueType.BYTES): lambda value: base64.b64encode(value).decode(),
}


def group_codes(spans: pa.Table, scalar: str, attributes: str) -> npt.NDArray[np.int64]:
    """A code per row, equal for rows whose ``scalar`` column and ``attributes`` list are equal (in
    every member, in order), computed without converting rows to Python.

    Each attribute member is dictionary-encoded, so equal values share a code; the codes of a row are
    joined into one text key, and the keys are dictionary-encoded again. A small table is cheaper
    in Python than in the dozen compute calls that takes.
    """
    if spans.num_rows <= _SMALL:
        codes: dict[Any, int] = {}
        rows = zip(spans[scalar].to_pylist(), spans[attributes].to_pylist(), strict=True)
        keys = [(value, tuple(tuple(a.values()) for a in attrs)) for value, attrs in rows]
        return np.array([codes.setdefault(key, len(codes)) for key in keys], dtype=np.int64)
    flat = array(spans[attributes]).flatten()
    members = []
    for member in flat.flatten():
        if pa.types.is_floating(member.type):
            member = pc.add(member, 0.0)  # -0.0 == 0.0, as Python compares them
        codes = pc.dictionary_encode(member, null_encoding="encode").indices
        members.append(pc.cast(codes, pa.string()))
    per_attribute = (pc.binary_join_element_wise(*members, ",") if members
                     else pa.array([], pa.string()))
    offsets = pa.array(list_offsets(spans[attributes]).astype(np.int32))
    per_row = pc.binary_join(pa.ListArray.from_arrays(offsets, per_attribute), ";")
    scalar_codes = pc.cast(pc.dictionary_encode(array(spans[scalar]), null_encoding="encode").indices,
                           pa.string())
    joined = pc.binary_join_element_wise(scalar_codes, per_row, "|")
    return np.asarray(pc.dictionary_encode(joined).indices.to_numpy(zero_copy_only=False), dtype=np.int64)


def rows_of(spans: pa.Table, columns: list[str], indices: list[int]) -> list[Json]:
    """Only the rows at ``indices`` (few, e.g. the spans that have events) as Python dicts."""
    if not indices:
        return []
    if spans.num_rows <= _SMALL:  # converting a few whole rows is cheaper than a take
        every: list[Json] = spans.select(columns).to_pylist()
        return [every[i] for i in indices]
    rows: list[Json] = spans.select(columns).take(pa.array(indices, pa.int64())).to_pylist()
    return rows
