"""The five Zipkin ingest behaviours end to end, each with the trace that showed it: posted to a running
``spanlake serve`` over Zipkin's HTTP route, read back through the Jaeger API (query port) and Zipkin's
API (Zipkin port)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.support import Json, eventually, parent_of, v1_trace
from tests.server import SpanlakeProcess
from tests.zipkin_data import lens_trace, normalized, shifted

NOW_US = time.time_ns() // 1000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SpanlakeProcess]:
    process = SpanlakeProcess(tmp_path_factory.mktemp("zipkin-ingest") / "data").start()
    yield process
    process.stop()


def post(server: SpanlakeProcess, spans: list[dict[str, Any]]) -> None:
    response = httpx.post(f"{server.url('zipkin')}/api/v2/spans", json=spans, timeout=30)
    assert response.status_code == 202, response.text


def jaeger_trace(server: SpanlakeProcess, trace_id: str, spans: int) -> Json:
    def check() -> Json:
        trace = v1_trace(server, trace_id)
        assert len(trace["spans"]) == spans
        return trace
    return eventually(check)


def zipkin_trace(server: SpanlakeProcess, trace_id: str) -> list[Json]:
    response = httpx.get(f"{server.url('zipkin')}/api/v2/trace/{trace_id}", timeout=30)
    assert response.status_code == 200, response.text
    trace: list[Json] = response.json()
    return trace


def test_several_shared_servers_under_one_client_each_get_an_id_and_keep_the_parent(server):
    # smartthings-oauth-authorization: five "pusher" SERVER spans share CLIENT 9d2d35b746db84f3
    sent = shifted(lens_trace("smartthings-oauth-authorization.json"), NOW_US)
    post(server, sent)
    trace_id = normalized(sent[0])["traceId"]
    trace = jaeger_trace(server, trace_id, 175)
    ids = [s["spanID"] for s in trace["spans"]]
    assert len(set(ids)) == 175  # no two spans share an ID any more
    under_client = [s for s in trace["spans"] if parent_of(s) == "9d2d35b746db84f3"
                    and s["operationName"] == "receive iot-events360"]
    assert len(under_client) == 5
    sent_ids = {s["id"] for s in sent}
    assert len([i for i in ids if i not in sent_ids]) == 45  # every shared span, as Jaeger does
    # Zipkin's API returns them as Zipkin does: shared, with the client's ID
    shared = [s for s in zipkin_trace(server, trace_id) if s.get("shared")]
    assert len(shared) == 45 and {s["id"] for s in shared} <= sent_ids


def test_an_ip_zipkin_accepts_is_kept_and_the_batch_stored(server):
    # the same trace has 52.0.0.04: the whole 175-span batch used to be refused with 400
    trace_id = normalized(lens_trace("smartthings-oauth-authorization.json")[0])["traceId"]
    spans = eventually(lambda: zipkin_trace(server, trace_id))
    remote_ips = {s.get("remoteEndpoint", {}).get("ipv4") for s in spans}
    assert {"52.0.0.04", "52.0.0.05"} <= remote_ips
    bad = [{"traceId": "abc", "id": "1", "name": "x", "timestamp": NOW_US,
            "localEndpoint": {"serviceName": "ip-test", "ipv4": "999.1.1.1", "port": 80}}]
    post(server, bad)
    (span,) = eventually(lambda: zipkin_trace(server, "abc".rjust(16, "0")))
    assert span["localEndpoint"] == {"serviceName": "ip-test", "port": 80}


def test_a_parent_id_equal_to_the_span_id_means_no_parent(server):
    post(server, [{"traceId": "cafe", "id": "77", "parentId": "77", "name": "self", "timestamp": NOW_US,
                   "localEndpoint": {"serviceName": "loop"}}])
    (span,) = jaeger_trace(server, "cafe", 1)["spans"]
    assert span["references"] == []
    assert "parentId" not in zipkin_trace(server, "cafe".rjust(16, "0"))[0]


def test_a_span_reported_twice_is_returned_once(server):
    sent = shifted(lens_trace("yelp.json"), NOW_US)
    post(server, sent)
    post(server, sent[:5])  # a retried batch
    trace_id = normalized(sent[0])["traceId"]
    jaeger_trace(server, trace_id, 16)
    assert len(zipkin_trace(server, trace_id)) == 16


def test_fragments_of_one_span_are_merged_into_it(server):
    # smartthings-mobile-web-install: 84 spans also arrive as fragments (name and endpoint only)
    sent = shifted(lens_trace("smartthings-mobile-web-install.json"), NOW_US)
    post(server, sent)
    trace_id = normalized(sent[0])["traceId"]
    trace = jaeger_trace(server, trace_id, 957)
    year_2000_us = 946_684_800 * 10**6
    assert min(s["startTime"] for s in trace["spans"]) > year_2000_us  # no span at 1970
    sent_ids = {s["id"] for s in sent}
    assert len([s for s in trace["spans"] if s["spanID"] not in sent_ids]) == 294  # as Jaeger
    assert len(zipkin_trace(server, trace_id)) == 957
