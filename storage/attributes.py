"""Typed attribute values <-> the ``ATTRIBUTE`` struct of the span schema.

Python values map to OTLP types as: str STRING, bool BOOL, int INT, float DOUBLE, bytes BYTES,
list ARRAY, dict KVLIST, None EMPTY. ARRAY and KVLIST are stored as their OTLP/JSON text (``str``
member), which keeps every nested type, so the mapping is lossless both ways.
"""

from __future__ import annotations

import base64
import json
import math
from typing import Any

from spanlake.storage.schema import ValueType

AttrRow = dict[str, Any]


def attr(key: str, value: Any) -> AttrRow:
    """One attribute row for ``value``, typed by its Python type."""
    row: AttrRow = {"key": key, "type": ValueType.EMPTY, "str": None, "int": None,
                    "double": None, "bool": None, "bytes": None}
    if value is None:
        return row
    if isinstance(value, bool):  # before int: bool is a subclass of int
        row.update(type=ValueType.BOOL, bool=value)
    elif isinstance(value, int):
        row.update(type=ValueType.INT, int=value)
    elif isinstance(value, float):
        row.update(type=ValueType.DOUBLE, double=value)
    elif isinstance(value, str):
        row.update(type=ValueType.STRING, str=value)
    elif isinstance(value, bytes | bytearray):
        row.update(type=ValueType.BYTES, bytes=bytes(value))
    elif isinstance(value, list | tuple):
        row.update(type=ValueType.ARRAY, str=json.dumps(_array_json(value), separators=(",", ":")))
    elif isinstance(value, dict):
        row.update(type=ValueType.KVLIST, str=json.dumps(_kvlist_json(value), separators=(",", ":")))
    else:
        raise TypeError(f"attribute {key!r}: unsupported value type {type(value).__name__}")
    return row


def attrs(mapping: dict[str, Any]) -> list[AttrRow]:
    """Attribute rows for a dict, in its order."""
    return [attr(k, v) for k, v in mapping.items()]


def attr_value(row: AttrRow) -> Any:
    """The Python value of an attribute row (inverse of ``attr``)."""
    t = row["type"]
    if t == ValueType.STRING:
        return row["str"]
    if t == ValueType.BOOL:
        return row["bool"]
    if t == ValueType.INT:
        return row["int"]
    if t == ValueType.DOUBLE:
        return row["double"]
    if t == ValueType.BYTES:
        return row["bytes"]
    if t == ValueType.ARRAY:
        return [any_value_from_json(v) for v in json.loads(row["str"]).get("values", [])]
    if t == ValueType.KVLIST:
        return {kv["key"]: any_value_from_json(kv.get("value", {}))
                for kv in json.loads(row["str"]).get("values", [])}
    return None


def attr_as_string(row: AttrRow) -> str:
    """The value as text, as Jaeger compares tags (pdata ``AsString``): JSON for arrays and maps."""
    t = row["type"]
    if t == ValueType.STRING:
        return str(row["str"])
    if t == ValueType.BOOL:
        return "true" if row["bool"] else "false"
    if t == ValueType.INT:
        return str(row["int"])
    if t == ValueType.DOUBLE:
        return format_double(row["double"])
    if t == ValueType.BYTES:
        return base64.b64encode(row["bytes"]).decode()
    if t in (ValueType.ARRAY, ValueType.KVLIST):
        return json.dumps(_plain(attr_value(row)), separators=(",", ":"))
    return ""


def format_double(value: float) -> str:
    """Go's ``strconv.FormatFloat(v, 'f', -1, 64)``: shortest round-trip digits, no exponent."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    text = repr(value)
    if "e" in text or "E" in text:
        text = f"{value:.0f}" if abs(value) >= 1 else f"{value:.{_decimals(text)}f}"
    return text[:-2] if text.endswith(".0") else text


def _decimals(text: str) -> int:
    mantissa, exponent = text.lower().split("e")
    digits = len(mantissa.replace("-", "").replace(".", "")) - 1
    return max(0, digits - int(exponent))


def any_value_to_json(value: Any) -> dict[str, Any]:
    """A Python value as an OTLP/JSON ``AnyValue`` object (int64 as a string, bytes as base64)."""
    if value is None:
        return {}
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, bytes | bytearray):
        return {"bytesValue": base64.b64encode(value).decode()}
    if isinstance(value, list | tuple):
        return {"arrayValue": _array_json(value)}
    if isinstance(value, dict):
        return {"kvlistValue": _kvlist_json(value)}
    raise TypeError(f"unsupported value type {type(value).__name__}")


def any_value_from_json(obj: dict[str, Any]) -> Any:
    """Inverse of ``any_value_to_json``; accepts ints as JSON numbers or strings, as OTLP/JSON does."""
    if "stringValue" in obj:
        return str(obj["stringValue"])
    if "boolValue" in obj:
        return bool(obj["boolValue"])
    if "intValue" in obj:
        return int(obj["intValue"])
    if "doubleValue" in obj:
        return float(obj["doubleValue"])
    if "bytesValue" in obj:
        return base64.b64decode(obj["bytesValue"])
    if "arrayValue" in obj:
        return [any_value_from_json(v) for v in (obj["arrayValue"] or {}).get("values", [])]
    if "kvlistValue" in obj:
        return {kv["key"]: any_value_from_json(kv.get("value") or {})
                for kv in (obj["kvlistValue"] or {}).get("values", [])}
    return None


def _array_json(values: list[Any] | tuple[Any, ...]) -> dict[str, Any]:
    return {"values": [any_value_to_json(v) for v in values]}


def _kvlist_json(mapping: dict[str, Any]) -> dict[str, Any]:
    return {"values": [{"key": k, "value": any_value_to_json(v)} for k, v in mapping.items()]}


def _plain(value: Any) -> Any:
    """JSON-ready form for ``AsString``: bytes as base64, containers recursively."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value
