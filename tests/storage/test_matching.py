from __future__ import annotations

from typing import Any

import pytest

from spanlake.storage.attributes import attr, attrs
from spanlake.storage.schema import SPAN_KIND_BY_NAME, STATUS_ERROR, STATUS_OK
from tests.storage.matching import span_matches_tags, tag_holds, value_matches


@pytest.mark.parametrize(
    ("value", "text", "matches"),
    [
        ("sameplacevalue", "sameplacevalue", True),
        ("sameplacevalue", "SamePlaceValue", False),
        (123, "123", True),
        (123, "+123", True),
        (123, "123.0", False),
        (123, "124", False),
        (2**53 + 1, str(2**53), False),  # exact, not through a float
        (72.5, "72.5", True),
        (72.5, "72.50", True),
        (1.0, "1", True),
        (1.0, "1.0", True),
        (0.1, "0.1", True),
        (True, "true", True),
        (True, "1", False),
        (False, "false", True),
        (b"\x00\x000", "AAAw", True),  # bytes read as base64, as pdata AsString
        ([1, "a"], '[1,"a"]', True),
        ({"k": "v"}, '{"k":"v"}', True),
        ("72.5", "72.50", False),  # strings compare as text only
    ],
)
def test_value_reads_as_text(value: Any, text: str, matches: bool) -> None:
    assert value_matches(attr("k", value), text) is matches


def _span(**overrides: Any) -> dict[str, Any]:
    span: dict[str, Any] = {
        "kind": 0, "status_code": 0, "scope_name": "", "scope_version": "",
        "resource_attributes": [], "scope_attributes": [], "span_attributes": [], "events": [], "links": [],
    }
    return {**span, **overrides}


@pytest.mark.parametrize(
    "where",
    [
        {"span_attributes": attrs({"k": "v"})},
        {"resource_attributes": attrs({"k": "v"})},
        {"scope_attributes": attrs({"k": "v"})},
        {"events": [{"attributes": []}, {"attributes": attrs({"k": "v"})}]},
        {"links": [{"attributes": attrs({"k": "v"})}]},
    ],
    ids=["span", "resource", "scope", "second-event", "link"],
)
def test_tag_is_found_at_every_level(where: dict[str, Any]) -> None:
    assert tag_holds(_span(**where), "k", "v")
    assert not tag_holds(_span(**where), "k", "w")


def test_each_tag_may_hold_in_a_different_place() -> None:
    span = _span(resource_attributes=attrs({"a": 1}), span_attributes=attrs({"b": True}),
                 events=[{"attributes": attrs({"c": "x"})}])
    assert span_matches_tags(span, {"a": "1", "b": "true", "c": "x"})
    assert not span_matches_tags(span, {"a": "1", "b": "true", "c": "y"})


def test_resource_prefix_searches_resource_attributes_only() -> None:
    assert tag_holds(_span(resource_attributes=attrs({"host": "h"})), "resource.host", "h")
    assert not tag_holds(_span(span_attributes=attrs({"host": "h"})), "resource.host", "h")


@pytest.mark.parametrize(
    ("span", "key", "text", "holds"),
    [
        (_span(status_code=STATUS_ERROR), "error", "true", True),
        (_span(status_code=STATUS_OK), "error", "true", False),
        (_span(status_code=STATUS_OK), "error", "false", True),
        (_span(status_code=STATUS_ERROR), "error", "false", False),
        (_span(status_code=STATUS_ERROR), "span.status", "error", True),
        (_span(status_code=STATUS_ERROR), "span.status", "STATUS_CODE_ERROR", True),
        (_span(status_code=STATUS_OK), "span.status", "Ok", True),
        (_span(), "span.status", "unset", True),
        (_span(), "span.status", "ok", False),
        (_span(kind=SPAN_KIND_BY_NAME["server"]), "span.kind", "server", True),
        (_span(kind=SPAN_KIND_BY_NAME["server"]), "span.kind", "SPAN_KIND_SERVER", True),
        (_span(kind=SPAN_KIND_BY_NAME["server"]), "span.kind", "client", False),
        (_span(), "span.kind", "unspecified", True),
        (_span(scope_name="lib"), "scope.name", "lib", True),
        (_span(scope_name="lib"), "scope.name", "other", False),
        (_span(scope_version="1.1.1"), "scope.version", "1.1.1", True),
        # not a boolean: ``error`` is then an ordinary attribute key
        (_span(span_attributes=attrs({"error": "timeout"})), "error", "timeout", True),
    ],
)
def test_special_keys_read_span_fields(span: dict[str, Any], key: str, text: str, holds: bool) -> None:
    assert tag_holds(span, key, text) is holds
