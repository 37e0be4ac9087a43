"""The JSON field names Tempo's ``tempo.proto`` allows per message, for strict-decoding checks.

Grafana decodes search and instant-query responses with jsonpb, which rejects unknown fields; the
names it accepts are the proto field names (jsonpb also accepts their lowerCamelCase form).
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from tests.paths import TEMPO_PROTO

_MESSAGE = re.compile(r"^message (\w+) \{(.*?)^\}", re.S | re.M)
_FIELD = re.compile(r"^\s*(?:repeated |optional )?([\w.<>, ]+?)\s+(\w+)\s*=\s*\d+", re.M)
# OTLP's common messages, as Tempo embeds them (tempopb.common.v1 is OTLP renamed).
_OTLP = {
    "KeyValue": {"key": "string", "value": "AnyValue"},
    "AnyValue": {"stringValue": "string", "boolValue": "bool", "intValue": "int64",
                 "doubleValue": "double", "arrayValue": "ArrayValue", "kvlistValue": "KeyValueList",
                 "bytesValue": "bytes"},
    "ArrayValue": {"values": "AnyValue"},
    "KeyValueList": {"values": "KeyValue"},
}


@cache
def messages() -> dict[str, dict[str, str]]:
    """message -> {json field name: type} from tempo.proto (nested messages are skipped)."""
    text = TEMPO_PROTO.read_text()
    out: dict[str, dict[str, str]] = dict(_OTLP)
    for name, body in _MESSAGE.findall(text):
        fields = {}
        for type_, field in _FIELD.findall(body):
            if type_.strip() in ("reserved", "message", "enum"):
                continue
            fields[_camel(field)] = type_.strip().split(".")[-1]
        out[name] = fields
    return out


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def unknown_fields(obj: Any, message: str, path: str = "$") -> list[str]:
    """Paths of JSON fields that ``message`` (recursively) does not declare."""
    fields = messages().get(message)
    if fields is None or not isinstance(obj, dict):
        return []
    bad = []
    for key, value in obj.items():
        if key not in fields:
            bad.append(f"{path}.{key} (not in {message})")
            continue
        type_ = fields[key]
        if type_.startswith("map<"):
            inner = type_[4:-1].split(",")[1].strip().split(".")[-1]
            for k, v in value.items():
                bad += unknown_fields(v, inner, f"{path}.{key}[{k}]")
        elif isinstance(value, list):
            for n, item in enumerate(value):
                bad += unknown_fields(item, type_, f"{path}.{key}[{n}]")
        else:
            bad += unknown_fields(value, type_, f"{path}.{key}")
    return bad
