"""Jaeger's tag match (``model.TagText``) as SQL over the attribute lists of a span.

Semantics (Jaeger's memory store ``findKeyValInTrace``): ``k=v`` holds when ``k`` appears with a value
whose string form is ``v`` in the span's span, resource, scope, event or link attributes. Values are
compared by type instead of formatting every stored value as text: ``"123"`` is compared with int
members as 123, ``"72.5"`` with doubles as 72.5, ``"true"`` with bools, base64 text with bytes, JSON
text with arrays and maps, and always with string members as text.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Any

from spanlake.storage.attributes import attr

Param = Callable[[Any], str]


def text_match_sql(key: str, value: str, resource_only: bool, param: Param) -> str:
    if resource_only:
        return _has("resource_attributes", key, value, param)

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


def _has(column: str, key: str, value: str, param: Param) -> str:
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
