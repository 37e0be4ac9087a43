from __future__ import annotations

import json

from spanlake.collector.formats.zipkin_v2 import decode_zipkin_v2_json
from spanlake.query.adjusters import adjust, deduplicate_client_server_span_ids
from spanlake.storage.attributes import attrs
from spanlake.storage.rows import spans_table
from tests.paths import ZIPKIN_LENS

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


# ---- Zipkin shared spans, with the stored shared flag (the zipkin-lens traces) -------------------


def _lens(name):
    return decode_zipkin_v2_json((ZIPKIN_LENS / name).read_bytes())


def _renamed(before, after):
    old = set(zip(before["trace_id"].to_pylist(), before["span_id"].to_pylist(), strict=True))
    return [r for r in after.to_pylist() if (r["trace_id"], r["span_id"]) not in old]


def test_every_shared_server_under_one_client_id_gets_its_own_id_and_keeps_the_client_as_parent():
    # smartthings-oauth-authorization: five "pusher" SERVER spans share CLIENT 9d2d35b746db84f3.
    table = _lens("smartthings-oauth-authorization.json")
    adjusted = adjust(table)
    client = bytes.fromhex("9d2d35b746db84f3")
    servers = [r for r in adjusted.to_pylist() if r["parent_span_id"] == client and r["kind"] == 2]
    assert len(servers) == 5
    assert len({r["span_id"] for r in servers}) == 5 and client not in {r["span_id"] for r in servers}
    assert len(_renamed(table, adjusted)) == 45  # every shared span in the trace
    assert adjusted.num_rows == 175


def test_the_mobile_install_trace_re_identifies_the_294_spans_jaeger_does():
    table = _lens("smartthings-mobile-web-install.json")
    assert len(_renamed(table, adjust(table))) == 294


def test_a_zipkin_shared_span_without_its_client_keeps_its_id():
    table = _lens("envoy.json")  # one shared SERVER span, the client never reported
    assert deduplicate_client_server_span_ids(table) is table


def test_a_zipkin_server_without_the_shared_flag_after_its_client_is_treated_as_shared():
    # Zipkin backfills the flag (Trace.merge); so does the adjuster.
    body = json.dumps([
        {"traceId": "a", "id": "1", "kind": "CLIENT", "name": "get", "timestamp": 10,
         "localEndpoint": {"serviceName": "web"}},
        {"traceId": "a", "id": "1", "kind": "SERVER", "name": "get", "timestamp": 11,
         "localEndpoint": {"serviceName": "api"}},
    ]).encode()
    table = decode_zipkin_v2_json(body)
    assert _tree(deduplicate_client_server_span_ids(table)) == [("get", 1, None), ("get", 2, 1)]
