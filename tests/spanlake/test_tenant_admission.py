"""Issue 14's global ingest and query limits together with issue 15's tenants, through the apps
``serve`` builds: both kinds of limit apply to every request, and the per-trace budget is a tenant's."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from spanlake.collector.formats.otlp import otlp_request_to_spans
from spanlake.listeners import Listeners
from spanlake.serve import Runtime
from spanlake.storage.api import StoreOverloaded
from spanlake.storage.store import SegmentStore
from tests.otlp_data import make_request
from tests.query.client import TestClient
from tests.spanlake.auth_support import bearer, runtime_and_store, settings_with_auth

LIMITS = """
[tenants.team-a]
ingest_rate = 10
ingest_burst = 40
"""


@pytest.fixture
def built(tmp_path: Path) -> Iterator[tuple[Runtime, Listeners, SegmentStore]]:
    (tmp_path / "limits.toml").write_text(LIMITS)
    settings = dataclasses.replace(settings_with_auth(tmp_path), limits_file=tmp_path / "limits.toml",
                                   max_spans_per_request=30, max_spans_per_trace=5,
                                   search_max_window_hours=1.0)
    runtime, store = runtime_and_store(settings)
    yield runtime, runtime.build(store), store
    store.close()


def _otlp(built: tuple[Runtime, Listeners, SegmentStore]) -> TestClient:
    (otlp,) = [h for h in built[1].http if h.name == "otlp_http"]
    return TestClient(otlp.app)


def _post(client: TestClient, tenant: str, request: ExportTraceServiceRequest) -> tuple[int, int]:
    """(status, spans the partial success rejected)."""
    reply = client.post("/v1/traces", content=request.SerializeToString(),
                        headers={"content-type": "application/x-protobuf", **bearer(tenant)})
    if reply.status_code != 200:
        return reply.status_code, -1
    answer = ExportTraceServiceResponse.FromString(reply.content)
    return 200, answer.partial_success.rejected_spans


def _stored(store: SegmentStore, tenant: str, request: ExportTraceServiceRequest) -> int:
    trace_id = request.resource_spans[0].scope_spans[0].spans[0].trace_id
    return store.for_tenant(tenant).get_traces([trace_id]).num_rows


def test_the_global_spans_per_request_cap_applies_to_every_tenant(built) -> None:
    client = _otlp(built)
    assert _post(client, "team-b", make_request(7, 5))[0] == 413  # 35 spans > 30: not retryable
    assert _post(client, "team-a", make_request(7, 5))[0] == 413  # before the tenant's rate is asked
    assert _post(client, "team-a", make_request(6, 5)) == (200, 0)  # 30 spans: within both limits


def test_the_tenants_own_rate_still_applies_under_the_global_limits(built) -> None:
    client = _otlp(built)
    assert _post(client, "team-a", make_request(6, 5)) == (200, 0)  # 30 of the burst of 40
    assert _post(client, "team-a", make_request(4, 5))[0] == 503  # 20 more: over the tenant's rate
    assert _post(client, "team-b", make_request(6, 5)) == (200, 0)  # team-b has no rate limit


def test_the_per_trace_budget_is_counted_per_tenant(built) -> None:
    client, store = _otlp(built), built[2]
    request = make_request(1, 5)
    assert _post(client, "team-b", request) == (200, 0)
    # The same trace ID from another tenant is another trace: its budget is untouched.
    assert _post(client, "team-a", request) == (200, 0)
    # team-b's trace is full: more of it is rejected per span (partial success), and not stored.
    assert _post(client, "team-b", request) == (200, 5)
    assert _stored(store, "team-b", request) == 5
    assert _stored(store, "team-a", request) == 5


def test_the_receivers_precheck_reaches_the_store_through_the_tenant_writer(built) -> None:
    runtime, _, store = built
    writer = runtime.writer_for(store)("otlp_http")
    store.config = dataclasses.replace(store.config, max_buffered_spans=5)
    store.write(make_request_table(6), "team-b")  # 6 spans buffered: over the limit
    with pytest.raises(StoreOverloaded):
        writer.precheck()  # type: ignore[attr-defined]  # the receivers' Admission, via TenantWriter


def test_query_limits_apply_to_a_tenants_search(built) -> None:
    (query,) = [h for h in built[1].http if h.name == "query"]
    reply = TestClient(query.app).get("/api/traces", params={"service": "checkout", "lookback": "2h"},
                                      headers=bearer("team-a"))
    assert reply.status_code == 400
    assert "--search-max-window-hours" in reply.json()["errors"][0]["msg"]


def make_request_table(spans: int) -> pa.Table:
    return otlp_request_to_spans(make_request(1, spans)).spans
