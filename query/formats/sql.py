"""SQL results (an Arrow table) -> the wire: JSON rows, CSV, Arrow IPC stream or Parquet. Pure.

JSON must survive a JavaScript client unchanged, so values are made JSON-safe: bytes become hex
text (IDs read as everyone writes them), integers beyond 2^53 become strings (a JS number would
round them), timestamps become ISO-8601 text with all their digits, NaN/Infinity become strings,
maps become objects. CSV has no nesting, so nested values are written as that same JSON text.
"""

from __future__ import annotations

import datetime as dt
import decimal
import io
import json
import math
import uuid
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pyarrow.types as pt

FORMATS = ("json", "csv", "arrow", "parquet")
MEDIA_TYPES = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "arrow": "application/vnd.apache.arrow.stream",
    "parquet": "application/vnd.apache.parquet",
}
_MAX_SAFE_INT = 2**53 - 1


def rows_json(table: pa.Table) -> list[list[Any]]:
    """The table's rows as lists of JSON-safe values, column order kept."""
    columns = [_json_values(_timestamps_as_text(table.column(i).combine_chunks()))
               for i in range(table.num_columns)]
    return [list(row) for row in zip(*columns, strict=True)] if columns else []


def to_csv(table: pa.Table) -> bytes:
    columns = [_csv_column(table.column(i).combine_chunks()) for i in range(table.num_columns)]
    flat = pa.Table.from_arrays(columns, names=table.column_names)
    out = io.BytesIO()
    pacsv.write_csv(flat, out)
    return out.getvalue()


def to_arrow_stream(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue())


def to_parquet(table: pa.Table) -> bytes:
    out = io.BytesIO()
    pq.write_table(table, out, compression="zstd")
    return out.getvalue()


def encode(table: pa.Table, fmt: str) -> bytes:
    """``table`` in one of the binary/text FORMATS other than JSON."""
    if fmt == "csv":
        return to_csv(table)
    if fmt == "arrow":
        return to_arrow_stream(table)
    if fmt == "parquet":
        return to_parquet(table)
    raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")


# --- JSON values ------------------------------------------------------------------------------
def _json_values(array: pa.Array) -> list[Any]:
    if pt.is_map(array.type):  # to_pylist gives [(key, value), ...]; an object reads better
        return [None if v is None else {_key(k): _json_value(x) for k, x in v} for v in array.to_pylist()]
    return [_json_value(v) for v in array.to_pylist()]


def _json_value(v: Any) -> Any:
    if v is None or isinstance(v, bool | str):
        return v
    if isinstance(v, int):
        return v if -_MAX_SAFE_INT <= v <= _MAX_SAFE_INT else str(v)
    if isinstance(v, float):
        return v if math.isfinite(v) else str(v).replace("inf", "Infinity").replace("nan", "NaN")
    if isinstance(v, bytes | bytearray):
        return bytes(v).hex()
    if isinstance(v, dict):
        return {str(k): _json_value(x) for k, x in v.items()}
    if isinstance(v, list):
        # Nested maps arrive as lists of (key, value) tuples.
        if v and all(isinstance(x, tuple) and len(x) == 2 for x in v):
            return {_key(k): _json_value(x) for k, x in v}
        return [_json_value(x) for x in v]
    if isinstance(v, decimal.Decimal):
        return _decimal(v)
    if isinstance(v, dt.datetime | dt.date | dt.time):
        return v.isoformat()
    if isinstance(v, dt.timedelta):
        return _duration(v)
    if isinstance(v, uuid.UUID):
        return str(v)
    if isinstance(v, pa.MonthDayNano):
        return f"P{v.months}M{v.days}DT{v.nanoseconds / 1e9:g}S"
    return str(v)


def _key(k: Any) -> str:
    value = _json_value(k)
    return value if isinstance(value, str) else json.dumps(value)


def _decimal(v: decimal.Decimal) -> Any:
    if v == v.to_integral_value():
        return _json_value(int(v))
    as_float = float(v)
    return as_float if decimal.Decimal(repr(as_float)) == v.normalize() else str(v)


def _duration(v: dt.timedelta) -> str:
    return f"PT{v.total_seconds():g}S"


# --- timestamps: formatted in Arrow, so nanoseconds survive (Python datetimes stop at micros) ----
def _timestamps_as_text(array: pa.Array) -> pa.Array:
    t = array.type
    if not _has_temporal(t):
        return array
    if pt.is_timestamp(t) or pt.is_date(t) or pt.is_time(t) or pt.is_duration(t):
        return _temporal_text(array)
    if pt.is_list(t) or pt.is_large_list(t):
        values = _timestamps_as_text(array.values)
        list_type = pa.list_(values.type) if pt.is_list(t) else pa.large_list(values.type)
        return type(array).from_arrays(array.offsets, values, type=list_type, mask=array.is_null())
    if pt.is_struct(t):
        fields = [_timestamps_as_text(array.field(i)) for i in range(t.num_fields)]
        return pa.StructArray.from_arrays(fields, names=[t.field(i).name for i in range(t.num_fields)],
                                          mask=array.is_null())
    return array.cast(_texted_type(t))  # maps and the rest: Arrow's own text for temporals


def _temporal_text(array: pa.Array) -> pa.Array:
    t = array.type
    if pt.is_timestamp(t):
        text = pc.strftime(array, format="%Y-%m-%dT%H:%M:%S")  # %S carries the fraction at ns/us/ms
        suffix = "" if t.tz is None else "Z"
        return pc.binary_join_element_wise(text, pa.scalar(suffix), "") if suffix else text
    if pt.is_duration(t):
        seconds = pc.divide(array.cast(pa.int64()).cast(pa.float64()), float(_PER_SECOND[t.unit]))
        return pc.binary_join_element_wise("PT", seconds.cast(pa.string()), "S", "")
    return array.cast(pa.string())


_PER_SECOND = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}


def _has_temporal(t: pa.DataType) -> bool:
    if pt.is_timestamp(t) or pt.is_date(t) or pt.is_time(t) or pt.is_duration(t):
        return True
    if pt.is_list(t) or pt.is_large_list(t) or pt.is_fixed_size_list(t):
        return _has_temporal(t.value_type)
    if pt.is_map(t):
        return _has_temporal(t.key_type) or _has_temporal(t.item_type)
    if pt.is_struct(t):
        return any(_has_temporal(t.field(i).type) for i in range(t.num_fields))
    return False


def _texted_type(t: pa.DataType) -> pa.DataType:
    if pt.is_timestamp(t) or pt.is_date(t) or pt.is_time(t) or pt.is_duration(t):
        return pa.string()
    if pt.is_map(t):
        return pa.map_(_texted_type(t.key_type), _texted_type(t.item_type))
    if pt.is_list(t):
        return pa.list_(_texted_type(t.value_type))
    if pt.is_large_list(t):
        return pa.large_list(_texted_type(t.value_type))
    if pt.is_fixed_size_list(t):
        return pa.list_(_texted_type(t.value_type), t.list_size)
    if pt.is_struct(t):
        fields = [t.field(i) for i in range(t.num_fields)]
        return pa.struct([pa.field(f.name, _texted_type(f.type)) for f in fields])
    return t


# --- CSV ------------------------------------------------------------------------------------------
def _csv_column(array: pa.Array) -> pa.Array:
    t = array.type
    if pt.is_nested(t):
        return pa.array([None if v is None else json.dumps(v, separators=(",", ":"))
                         for v in _json_values(_timestamps_as_text(array))], pa.string())
    if pt.is_binary(t) or pt.is_large_binary(t) or pt.is_fixed_size_binary(t):
        return pa.array([None if v is None else v.hex() for v in array.to_pylist()], pa.string())
    if pt.is_timestamp(t) or pt.is_duration(t):
        return _temporal_text(array)
    if pt.is_decimal(t) or pt.is_interval(t):
        return pa.array([None if v is None else str(_json_value(v)) for v in array.to_pylist()], pa.string())
    return array
