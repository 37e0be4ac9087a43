from __future__ import annotations

from spanlake.query.adjusters import adjust, deduplicate_client_server_span_ids
from spanlake.storage.attributes import attrs
from spanlake.storage.rows import spans_table

TRACE = bytes(15) + b"\x01"


def _id(n):
    return n.to_bytes(8, "big")


def _span(span_id, parent, kind, start, service="svc"):
    return {
        "trace_id": TRACE,
        "span_id": _id(span_id),
        "parent_span_id": _id(parent) if parent else None,
        "kind": kind,
        "name": f"s{span_id}-{kind}",
        "start_time_unix_nano": start,
        "end_time_unix_nano": start + 10,
        "resource_attributes": attrs({"service.name": service}),
    }


def _tree(table):
    return [
        (
            r["name"],
            int.from_bytes(r["span_id"], "big"),
            r["parent_span_id"] and int.from_bytes(r["parent_span_id"], "big"),
        )
        for r in table.select(["name", "span_id", "parent_span_id"]).to_pylist()
    ]


def test_shared_server_span_gets_new_id_under_its_client():
    # Zipkin B3 "shared" span: client and server report span 5; the server's child points at 5.
    table = spans_table(
        [
            _span(1, None, 2, 0, "web"),
            _span(5, 1, 3, 10, "web"),
            _span(5, 1, 2, 20, "api"),
            _span(7, 5, 3, 30, "api"),
        ]
    )
    assert _tree(deduplicate_client_server_span_ids(table)) == [
        ("s1-2", 1, None),
        ("s5-3", 5, 1),
        ("s5-2", 6, 5),
        ("s7-3", 7, 6),
    ]


def test_new_id_skips_ids_in_use():
    table = spans_table([_span(5, None, 3, 0), _span(5, None, 2, 1), _span(6, 5, 1, 2)])
    assert _tree(deduplicate_client_server_span_ids(table))[1] == ("s5-2", 7, 5)


def test_duplicate_ids_that_are_not_client_server_pairs_are_kept():
    table = spans_table(
        [_span(3, None, 0, 0), _span(3, None, 0, 1), _span(4, None, 2, 2), _span(4, None, 2, 3)]
    )
    assert deduplicate_client_server_span_ids(table) is table


def test_adjust_sorts_by_start_after_fixing_ids():
    table = spans_table([_span(2, 1, 2, 50), _span(1, None, 3, 10), _span(2, None, 3, 30)])
    assert [name for name, _, _ in _tree(adjust(table))] == ["s1-3", "s2-3", "s2-2"]
