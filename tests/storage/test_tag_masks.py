from __future__ import annotations

import random
from typing import Any

import pytest

from spanlake.storage.attributes import attr_as_string, attrs
from spanlake.storage.rows import spans_table
from spanlake.storage.schema import ValueType
from tests.storage.matching import MATCH_COLUMNS, tag_holds
from tests.storage.spans import span
from tests.storage.tag_masks import tag_mask, tags_mask

KEYS = ["k", "resource.k", "j", "error", "span.status", "span.kind", "scope.name"]
VALUES: list[Any] = ["v", "w", "", 0, 1, -7, 2**63 - 1, 1.0, 72.5, -0.0, float("nan"), float("inf"),
                     True, False, b"\x01", [1, "a"], {"m": 2}, None]
TEXTS = ["v", "", "0", "1", "1.0", "-7", str(2**63 - 1), str(2**63), "72.5", "72.50", "-0", "0.0",
         "NaN", "+Inf", "true", "false", "AQ==", '[1,"a"]', '{"m":2}', "error", "server", "lib"]


def _random_attrs(rng: random.Random) -> list[dict[str, Any]]:
    return attrs({rng.choice(["k", "j", "error"]): rng.choice(VALUES) for _ in range(rng.randrange(3))})


def _random_table(seed: int, n: int = 200) -> Any:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        rows.append(span(i + 1, 1, "svc", kind=rng.randrange(6), status_code=rng.randrange(3),
                         scope_name=rng.choice(["", "lib"]), span_attributes=_random_attrs(rng),
                         resource_attributes=[*attrs({"service.name": "svc"}), *_random_attrs(rng)],
                         scope_attributes=_random_attrs(rng),
                         events=[{"time_unix_nano": 0, "name": "e", "attributes": _random_attrs(rng),
                                  "dropped_attributes_count": 0} for _ in range(rng.randrange(3))],
                         links=[{"trace_id": bytes(16), "span_id": bytes(8), "trace_state": "",
                                 "attributes": _random_attrs(rng), "dropped_attributes_count": 0,
                                 "flags": 0} for _ in range(rng.randrange(2))]))
    return spans_table(rows)


@pytest.mark.parametrize("seed", [1, 2])
def test_vectorised_masks_agree_with_the_python_specification(seed: int) -> None:
    table = _random_table(seed)
    spans = table.select(list(MATCH_COLUMNS)).to_pylist()
    for key in KEYS:
        for text in TEXTS:
            mask = tag_mask(table, key, text)
            expected = [tag_holds(row, key, text) for row in spans]
            for i, holds in enumerate(expected):
                assert not (mask.sure[i] and mask.maybe[i])
                if not mask.maybe[i]:
                    assert mask.sure[i] == holds, (key, text, spans[i])


def test_only_bytes_arrays_maps_and_empty_values_are_left_to_python() -> None:
    table = _random_table(4)
    complex_types = {ValueType.EMPTY, ValueType.BYTES, ValueType.ARRAY, ValueType.KVLIST}
    for text in TEXTS:
        mask = tag_mask(table, "k", text)
        for i in mask.maybe.nonzero()[0]:
            row = table.slice(i, 1).select(list(MATCH_COLUMNS)).to_pylist()[0]
            levels = [row["span_attributes"], row["resource_attributes"], row["scope_attributes"],
                      *(e["attributes"] for e in row["events"]), *(lk["attributes"] for lk in row["links"])]
            assert any(a["key"] == "k" and a["type"] in complex_types for level in levels for a in level)


def test_several_tags_must_all_hold() -> None:
    table = spans_table([span(1, 1, "svc", span_attributes=attrs({"a": 1, "b": "x"})),
                         span(2, 1, "svc", span_attributes=attrs({"a": 1, "b": "y"}))])
    assert tags_mask(table, {"a": "1", "b": "x"}).sure.tolist() == [True, False]
    assert tags_mask(table, {}).sure.tolist() == [True, True]


def test_as_string_of_random_doubles_round_trips_through_the_mask() -> None:
    rng = random.Random(5)
    values = [rng.uniform(-1e6, 1e6) for _ in range(50)] + [1e-7, 1e21, 5e-324]
    rows = [span(i + 1, 1, "svc", span_attributes=attrs({"d": v})) for i, v in enumerate(values)]
    table = spans_table(rows)
    for i, v in enumerate(values):
        text = attr_as_string(attrs({"d": v})[0])
        assert tag_mask(table, "d", text).sure.nonzero()[0].tolist() == [i], text
