"""Hypothesis strategies for hostile input: broken bytes near valid payloads, odd JSON, odd values."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

# Values that broke parsers before (issue 14) or sit on a boundary.
EDGE_TEXT = ["", "0", "-1", "1e309", "NaN", "\x00", "\ud800", "%00", "9" * 40, str(2**63), str(2**63 - 1),
             str(-(2**63)), str(2**64), "99999999999h", "-5m", "1.5.5s", "null", "[]", "{}", "[" * 3000,
             "2006-01-02T15:04:05Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999Z",
             "../../etc/passwd", "a" * 5000, "SPAN_KIND_SERVER", "server", "true", " "]

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                         st.floats(allow_nan=False), st.text(max_size=20), st.sampled_from(EDGE_TEXT))
json_values = st.recursive(json_scalars, lambda children: st.one_of(
    st.lists(children, max_size=4), st.dictionaries(st.text(max_size=10), children, max_size=4)),
    max_leaves=20)
param_values = st.one_of(st.sampled_from(EDGE_TEXT), st.text(max_size=30),
                         st.integers(min_value=-(2**70), max_value=2**70).map(str),
                         st.tuples(st.integers(0, 10**12), st.sampled_from(["ns", "us", "ms", "s", "m", "h"]))
                         .map(lambda t: f"{t[0]}{t[1]}"))


def mutated(valid: bytes) -> st.SearchStrategy[bytes]:
    """``valid`` with bytes flipped, cut, duplicated or spliced, or random bytes."""
    def flip(data: bytes, positions: list[int], value: int) -> bytes:
        out = bytearray(data)
        for p in positions:
            out[p % len(out)] ^= value or 1
        return bytes(out)

    flips = st.builds(flip, st.just(valid), st.lists(st.integers(0, 10**6), min_size=1, max_size=4),
                      st.integers(0, 255))
    cuts = st.integers(0, len(valid)).map(lambda n: valid[:n])
    splices = st.tuples(st.integers(0, len(valid)), st.binary(max_size=40)).map(
        lambda t: valid[:t[0]] + t[1] + valid[t[0]:])
    return st.one_of(flips, cuts, splices, st.binary(max_size=200))


def json_documents(valid: Any) -> st.SearchStrategy[bytes]:
    """JSON near ``valid``: its leaves replaced by odd values, or any JSON, or broken text."""
    def replace_leaf(doc: Any, path: list[int], value: Any) -> Any:
        if not path:
            return value
        if isinstance(doc, dict) and doc:
            key = sorted(doc)[path[0] % len(doc)]
            return {**doc, key: replace_leaf(doc[key], path[1:], value)}
        if isinstance(doc, list) and doc:
            i = path[0] % len(doc)
            return [*doc[:i], replace_leaf(doc[i], path[1:], value), *doc[i + 1:]]
        return value

    near = st.builds(replace_leaf, st.just(valid), st.lists(st.integers(0, 50), max_size=8), json_values)
    def dumps(doc: Any) -> bytes:
        return json.dumps(doc).encode()

    return st.one_of(near.map(dumps), json_values.map(dumps), mutated(dumps(valid)))
