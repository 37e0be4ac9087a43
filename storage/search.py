"""TraceQuery -> a parameterised DuckDB WHERE clause over the span schema.

Semantics (Jaeger's memory store ``findKeyValInTrace``): every condition holds on one span; a tag ``k=v``
holds when ``k`` appears with a value whose string form is ``v`` in the span's span, resource,
scope, event or link attributes. Values are compared by type instead of formatting every stored
value as text: ``"123"`` is compared with int members as 123, ``"72.5"`` with doubles as 72.5,
``"true"`` with bools, and always with string members as text.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from spanlake.storage.api import TraceQuery
from spanlake.storage.attributes import attr
from spanlake.storage.schema import SPAN_KIND_BY_NAME, STATUS_ERROR

_STATUS_BY_NAME = {"unset": 0, "ok": 1, "error": 2}
# Tag keys that may be matched against span fields rather than attributes (``_special_condition``).
# Segment pruning on attribute values (the Bloom filters) must never rule these out.
SPECIAL_KEYS = frozenset({"error", "span.status", "span.kind", "scope.name", "scope.version"})


@dataclass
class SearchFilter:
    sql: str
    params: dict[str, Any] = field(default_factory=dict)


def build_filter(query: TraceQuery) -> SearchFilter:
    conds: list[str] = []
    params: dict[str, Any] = {}

    def param(value: Any) -> str:
        name = f"p{len(params)}"
        params[name] = value
        return f"${name}"

    if query.service_name:
        conds.append(f"service_name = {param(query.service_name)}")
    if query.operation_name:
        conds.append(f"name = {param(query.operation_name)}")
    if query.span_kind is not None:
        conds.append(f"kind = {param(query.span_kind)}")
    if query.start_time_min_ns is not None:
        conds.append(f"start_time_unix_nano >= {param(query.start_time_min_ns)}")
    if query.start_time_max_ns is not None:
        conds.append(f"start_time_unix_nano <= {param(query.start_time_max_ns)}")
    if query.duration_min_ns is not None:
        conds.append(f"duration_nano >= {param(query.duration_min_ns)}")
    if query.duration_max_ns is not None:
        conds.append(f"duration_nano <= {param(query.duration_max_ns)}")
    for key, value in query.attributes.items():
        conds.append(_tag_condition(key, str(value), param))
    for word in query.marks:
        conds.append(_mark_condition(word, param))
    return SearchFilter(" AND ".join(conds) or "TRUE", params)


def _tag_condition(key: str, value: str, param: Callable[[Any], str]) -> str:
    special = _special_condition(key, value, param)
    if special is not None:
        return special
    if key.startswith("resource."):
        return _has("resource_attributes", key.removeprefix("resource."), value, param)

    def match(column: str) -> str:
        return _has(column, key, value, param)

    levels = [
        match("span_attributes"),
        match("resource_attributes"),
        match("scope_attributes"),
        f"len(list_filter(events, lambda e: {match('e.attributes')})) > 0",
        f"len(list_filter(links, lambda l: {match('l.attributes')})) > 0",
    ]
    return "(" + " OR ".join(levels) + ")"


def _mark_condition(word: str, param: Callable[[Any], str]) -> str:
    """An event named ``word``, or a span or resource attribute with that key."""
    p = param(word)
    return (f"(len(list_filter(events, lambda e: e.name = {p})) > 0"
            f" OR len(list_filter(span_attributes, lambda a: a.key = {p})) > 0"
            f" OR len(list_filter(resource_attributes, lambda a: a.key = {p})) > 0)")


def _special_condition(key: str, value: str, param: Callable[[Any], str]) -> str | None:
    """Jaeger's special tag keys; None when ``key`` is an ordinary attribute key."""
    low = value.lower()
    if key == "error" and low in ("true", "false"):  # span status only, as Jaeger's memory store
        return f"status_code {'=' if low == 'true' else '<>'} {STATUS_ERROR}"
    if key == "span.status":
        code = _STATUS_BY_NAME.get(low.removeprefix("status_code_"))
        return "FALSE" if code is None else f"status_code = {param(code)}"
    if key == "span.kind":
        kind = SPAN_KIND_BY_NAME.get(low.removeprefix("span_kind_")) if low else None
        return "FALSE" if kind is None else f"kind = {param(kind)}"
    if key == "scope.name":
        return f"scope_name = {param(value)}"
    if key == "scope.version":
        return f"scope_version = {param(value)}"
    return None


def _has(column: str, key: str, value: str, param: Callable[[Any], str]) -> str:
    """``column`` (a list of ATTRIBUTE structs) has ``key`` with a value whose text is ``value``."""
    options = [f"a.str = {param(value)}"]
    as_int, as_float = _parse_int(value), _parse_float(value)
    if as_int is not None:
        options.append(f"a.int = {param(as_int)}")
    if as_float is not None:
        options.append(f"a.double = {param(as_float)}")
    if value in ("true", "false"):
        options.append(f"a.bool = {param(value == 'true')}")
    as_bytes = _parse_base64(value)
    if as_bytes is not None:
        options.append(f"a.bytes = {param(as_bytes)}")
    as_container = _container_json(value)
    if as_container is not None:  # arrays and maps are stored as typed OTLP/JSON text
        options.append(f"a.str = {param(as_container)}")
    values = " OR ".join(options)
    return f"len(list_filter({column}, lambda a: a.key = {param(key)} AND ({values}))) > 0"


def _container_json(text: str) -> str | None:
    """The stored form of an array or map whose AsString text is ``text``, if it is one."""
    if not text.startswith(("[", "{")):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if not isinstance(value, list | dict):
        return None
    stored: str | None = attr("", value)["str"]
    return stored


def _parse_int(text: str) -> int | None:
    try:
        value = int(text, 10)
    except ValueError:
        return None
    return value if -(2**63) <= value < 2**63 else None


def _parse_float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _parse_base64(text: str) -> bytes | None:
    if len(text) < 4 or len(text) % 4:
        return None
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
