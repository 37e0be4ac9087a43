"""OTLP ``AnyValue`` (protobuf message or OTLP/JSON object) -> a typed attribute value.

A value becomes ``(ValueType, python value)``. ARRAY and KVLIST become their canonical OTLP/JSON text
(the ``str`` member of the schema's ATTRIBUTE struct): camelCase names, int64 as strings, bytes as
base64, non-finite doubles as the strings "NaN" / "Infinity" / "-Infinity" (proto3 JSON mapping), element
order and duplicate keys kept. ``storage.attributes.attr_value`` and the reverse converters read it.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from typing import Any

from opentelemetry.proto.common.v1 import common_pb2

from spanlake.collector.formats.errors import FormatError
from spanlake.storage.schema import ValueType

Typed = tuple[int, Any]

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def json_text(obj: dict[str, Any]) -> str:
    """The stored text of an ARRAY / KVLIST value (compact, as ``storage/attributes.py`` writes it)."""
    return json.dumps(obj, separators=(",", ":"))


def double_json(value: float) -> float | str:
    """A double as proto3 JSON writes it: a number, or a string for NaN and the infinities."""
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


# ---- protobuf -------------------------------------------------------------------------------------


def pb_typed(value: common_pb2.AnyValue) -> Typed:
    """The typed value of a protobuf AnyValue."""
    which = value.WhichOneof("value")
    if which == "string_value":
        return ValueType.STRING, value.string_value
    if which == "int_value":
        return ValueType.INT, value.int_value
    if which == "double_value":
        return ValueType.DOUBLE, value.double_value
    if which == "bool_value":
        return ValueType.BOOL, value.bool_value
    if which == "bytes_value":
        return ValueType.BYTES, value.bytes_value
    if which == "array_value":
        return ValueType.ARRAY, json_text(_pb_array_json(value.array_value))
    if which == "kvlist_value":
        return ValueType.KVLIST, json_text(_pb_kvlist_json(value.kvlist_value))
    # Unset, or ``string_value_strindex`` (only meaningful inside profiles' string tables).
    return ValueType.EMPTY, None


def pb_any_json(value: common_pb2.AnyValue) -> dict[str, Any]:
    """A protobuf AnyValue as a canonical OTLP/JSON object."""
    which = value.WhichOneof("value")
    if which == "string_value":
        return {"stringValue": value.string_value}
    if which == "int_value":
        return {"intValue": str(value.int_value)}
    if which == "double_value":
        return {"doubleValue": double_json(value.double_value)}
    if which == "bool_value":
        return {"boolValue": value.bool_value}
    if which == "bytes_value":
        return {"bytesValue": base64.b64encode(value.bytes_value).decode()}
    if which == "array_value":
        return {"arrayValue": _pb_array_json(value.array_value)}
    if which == "kvlist_value":
        return {"kvlistValue": _pb_kvlist_json(value.kvlist_value)}
    return {}


def _pb_array_json(array: common_pb2.ArrayValue) -> dict[str, Any]:
    return {"values": [pb_any_json(v) for v in array.values]}


def _pb_kvlist_json(kvlist: common_pb2.KeyValueList) -> dict[str, Any]:
    return {"values": [{"key": kv.key, "value": pb_any_json(kv.value)} for kv in kvlist.values]}


# ---- OTLP/JSON ------------------------------------------------------------------------------------

# proto3 JSON accepts the lowerCamelCase name and the original field name.
_MEMBERS = (
    ("stringValue", "string_value"),
    ("boolValue", "bool_value"),
    ("intValue", "int_value"),
    ("doubleValue", "double_value"),
    ("bytesValue", "bytes_value"),
    ("arrayValue", "array_value"),
    ("kvlistValue", "kvlist_value"),
)


def json_typed(obj: Any, path: str) -> Typed:
    """The typed value of an OTLP/JSON AnyValue object; ``path`` names it in errors."""
    if not isinstance(obj, dict):
        raise FormatError(f"{path}: expected an AnyValue object, got {_kind(obj)}")
    member, raw = _member(obj)
    if member is None:
        return ValueType.EMPTY, None
    where = f"{path}.{member}"
    if member == "stringValue":
        return ValueType.STRING, _string(raw, where)
    if member == "boolValue":
        return ValueType.BOOL, _bool(raw, where)
    if member == "intValue":
        return ValueType.INT, json_int64(raw, where)
    if member == "doubleValue":
        return ValueType.DOUBLE, json_double(raw, where)
    if member == "bytesValue":
        return ValueType.BYTES, json_bytes(raw, where)
    if member == "arrayValue":
        return ValueType.ARRAY, json_text(_json_array(raw, where))
    return ValueType.KVLIST, json_text(_json_kvlist(raw, where))


def _member(obj: dict[str, Any]) -> tuple[str | None, Any]:
    """Which oneof member is set (a JSON null counts as unset, as in protobuf's parser)."""
    for camel, snake in _MEMBERS:
        raw = obj.get(camel)
        if raw is None:
            raw = obj.get(snake)
        if raw is not None:
            return camel, raw
    return None, None


def _canonical(obj: Any, path: str) -> dict[str, Any]:
    """An OTLP/JSON AnyValue in canonical form, validated."""
    kind, value = json_typed(obj, path)
    if kind == ValueType.EMPTY:
        return {}
    if kind == ValueType.STRING:
        return {"stringValue": value}
    if kind == ValueType.BOOL:
        return {"boolValue": value}
    if kind == ValueType.INT:
        return {"intValue": str(value)}
    if kind == ValueType.DOUBLE:
        return {"doubleValue": double_json(value)}
    if kind == ValueType.BYTES:
        return {"bytesValue": base64.b64encode(value).decode()}
    member = "arrayValue" if kind == ValueType.ARRAY else "kvlistValue"
    return {member: json.loads(value)}


def _json_array(raw: Any, path: str) -> dict[str, Any]:
    values = _values(raw, path)
    return {"values": [_canonical(v, f"{path}.values[{i}]") for i, v in enumerate(values)]}


def _json_kvlist(raw: Any, path: str) -> dict[str, Any]:
    out = []
    for i, kv in enumerate(_values(raw, path)):
        where = f"{path}.values[{i}]"
        if not isinstance(kv, dict):
            raise FormatError(f"{where}: expected a KeyValue object, got {_kind(kv)}")
        key = _string(kv.get("key", ""), f"{where}.key")
        out.append({"key": key, "value": _canonical(kv.get("value") or {}, f"{where}.value")})
    return {"values": out}


def _values(raw: Any, path: str) -> list[Any]:
    if not isinstance(raw, dict):
        raise FormatError(f"{path}: expected an object, got {_kind(raw)}")
    values = raw.get("values")
    if values is None:
        return []
    if not isinstance(values, list):
        raise FormatError(f"{path}.values: expected an array, got {_kind(values)}")
    return values


def _string(raw: Any, path: str) -> str:
    if not isinstance(raw, str):
        raise FormatError(f"{path}: expected a string, got {_kind(raw)}")
    return raw


def _bool(raw: Any, path: str) -> bool:
    if not isinstance(raw, bool):
        raise FormatError(f"{path}: expected true or false, got {_kind(raw)}")
    return raw


def json_int64(raw: Any, path: str, lo: int = INT64_MIN, hi: int = INT64_MAX) -> int:
    """A proto3 JSON 64-bit integer: a JSON number or a decimal string, within ``lo..hi``."""
    if isinstance(raw, bool):
        raise FormatError(f"{path}: expected an integer, got a boolean")
    if isinstance(raw, int):
        value = raw
    elif isinstance(raw, float) and raw.is_integer():
        value = int(raw)
    elif isinstance(raw, str) and raw.lstrip("-").isdigit() and raw.isascii():
        value = int(raw)
    else:
        raise FormatError(f"{path}: expected an integer or a decimal string, got {raw!r:.40}")
    if not lo <= value <= hi:
        raise FormatError(f"{path}: {value} is out of range [{lo}, {hi}]")
    return value


def json_double(raw: Any, path: str) -> float:
    """A proto3 JSON double: a number, or a string (including "NaN", "Infinity", "-Infinity")."""
    if isinstance(raw, bool):
        raise FormatError(f"{path}: expected a number, got a boolean")
    if isinstance(raw, int | float):
        return float(raw)
    if isinstance(raw, str):
        try:
            return float(raw)
        except ValueError:
            pass
    raise FormatError(f"{path}: expected a number, got {raw!r:.40}")


def json_bytes(raw: Any, path: str) -> bytes:
    """proto3 JSON bytes: standard or URL-safe base64, padding optional."""
    if not isinstance(raw, str):
        raise FormatError(f"{path}: expected a base64 string, got {_kind(raw)}")
    text = raw.replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise FormatError(f"{path}: not valid base64") from None


def _kind(raw: Any) -> str:
    """A JSON value's kind, for error messages."""
    if raw is None:
        return "null"
    if isinstance(raw, bool):
        return "a boolean"
    if isinstance(raw, int | float):
        return "a number"
    if isinstance(raw, str):
        return "a string"
    if isinstance(raw, list):
        return "an array"
    return "an object"


json_kind = _kind
