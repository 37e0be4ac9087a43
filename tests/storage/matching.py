"""Jaeger's tag semantics for trace search, on one span row: the reference every backend matches.

A tag ``k=v`` holds on a span when an attribute ``k`` whose value reads as ``v`` appears in its span,
resource, scope, event or link attributes (Jaeger's memory store
``findKeyValInTrace``). Values are compared as text (pdata ``AsString``), with numbers also compared
as numbers so "1" matches double 1.0 and "72.50" matches 72.5. Each tag may hold in a different place
of the same span ("Tags in different spots"). A few keys are special and read span fields instead.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from spanlake.storage.attributes import AttrRow, attr_as_string
from spanlake.storage.schema import SPAN_KIND_BY_NAME, STATUS_ERROR, ValueType

# The span columns tag matching reads; a backend fetches only these for its candidate rows.
MATCH_COLUMNS = (
    "kind",
    "status_code",
    "scope_name",
    "scope_version",
    "resource_attributes",
    "scope_attributes",
    "span_attributes",
    "events",
    "links",
)

# Status names as Jaeger clients send them (lower-cased before the lookup).
STATUS_BY_NAME: dict[str, int] = {"unset": 0, "ok": 1, "error": 2}
RESOURCE_PREFIX = "resource."


def span_matches_tags(span: Mapping[str, Any], tags: Mapping[str, str]) -> bool:
    """True when every tag holds on ``span`` (a dict with at least ``MATCH_COLUMNS``)."""
    return all(tag_holds(span, key, value) for key, value in tags.items())


def span_has_marks(span: Mapping[str, Any], words: Iterable[str]) -> bool:
    """True when each word names one of the span's events or a span or resource attribute key."""
    names = {e["name"] for e in span["events"]}
    keys = {a["key"] for a in span["span_attributes"]} | {a["key"] for a in span["resource_attributes"]}
    return all(word in names or word in keys for word in words)


def tag_holds(span: Mapping[str, Any], key: str, value: str) -> bool:
    """One tag on one span: a special key reads its span field, any other key the attributes."""
    test = field_test(key, value)
    if test is not None:
        return test.holds(span[test.column])
    if key.startswith(RESOURCE_PREFIX):
        # ``resource.<k>`` restricts the search to resource attributes (Jaeger HEAD memory store).
        return _any_match(span["resource_attributes"], key[len(RESOURCE_PREFIX):], value)
    return any(_any_match(attributes, key, value) for attributes in _attribute_lists(span))


@dataclass(frozen=True)
class FieldTest:
    """A special key as a test of one plain span column: ``column == value`` (or ``!=``)."""

    column: str
    value: int | str | None  # None: nothing matches (an unknown status or kind name)
    negate: bool = False

    def holds(self, actual: Any) -> bool:
        if self.value is None:
            return False
        return bool(actual == self.value) != self.negate


def field_test(key: str, value: str) -> FieldTest | None:
    """The column test a special key stands for, or None when ``key`` is an ordinary attribute key."""
    wanted = value.strip().lower()
    if key == "error" and wanted in ("true", "false"):
        # Jaeger maps the OpenTracing ``error`` tag to span status, so the tag asks about status.
        return FieldTest("status_code", STATUS_ERROR, negate=wanted == "false")
    if key == "span.status":
        return FieldTest("status_code", STATUS_BY_NAME.get(wanted.removeprefix("status_code_")))
    if key == "span.kind":
        return FieldTest("kind", _kind_number(wanted))
    if key == "scope.name":
        return FieldTest("scope_name", value)
    if key == "scope.version":
        return FieldTest("scope_version", value)
    return None


def _kind_number(text: str) -> int | None:
    """Accepts ``server``, ``Server`` (pdata) and ``SPAN_KIND_SERVER`` (OTLP enum) alike."""
    name = text.removeprefix("span_kind_")
    return SPAN_KIND_BY_NAME.get("" if name == "unspecified" else name)


def _attribute_lists(span: Mapping[str, Any]) -> Iterable[list[AttrRow]]:
    yield span["span_attributes"]
    yield span["resource_attributes"]
    yield span["scope_attributes"]
    for event in span["events"]:
        yield event["attributes"]
    for link in span["links"]:
        yield link["attributes"]


def _any_match(attributes: list[AttrRow], key: str, value: str) -> bool:
    return any(a["key"] == key and value_matches(a, value) for a in attributes)


def value_matches(attribute: AttrRow, text: str) -> bool:
    """Whether an attribute's value reads as ``text``: its ``AsString`` form, or the same number
    (a double by value, so "72.50" and "1.0" match 72.5 and 1.0; an int by exact integer text)."""
    if attr_as_string(attribute) == text:
        return True
    kind = attribute["type"]
    if kind == ValueType.DOUBLE and attribute["double"] is not None:
        return bool(parse_float(text) == attribute["double"])
    if kind == ValueType.INT and attribute["int"] is not None:
        return bool(parse_int(text) == attribute["int"])
    return False


def parse_float(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return None if math.isnan(number) else number


def parse_int(text: str) -> int | None:
    """``text`` as an exact integer ("123", "+123", " 123"); never through a float, so int64 values
    beyond 2**53 do not collide. "123.0" is not an int's text and does not match int 123."""
    try:
        return int(text)
    except ValueError:
        return None
