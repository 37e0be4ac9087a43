"""Fuzz every query-parameter family of the query app (built exactly as ``spanlake serve`` builds it,
over a segment store holding a few traces): any parameters get an answer below 500."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spanlake.collector.admission import Admission
from spanlake.collector.formats.otlp import decode_otlp_protobuf
from spanlake.config import Settings
from spanlake.serve import Runtime
from spanlake.storage.store import SegmentStore, StoreConfig
from tests.fuzz.conftest import count_case
from tests.fuzz.strategies import EDGE_TEXT, json_documents, param_values
from tests.otlp_data import make_request
from tests.query.client import TestClient

pytestmark = pytest.mark.fuzz

# (path, the parameter names of the family)
FAMILIES: dict[str, tuple[str, list[str]]] = {
    "search-v1": ("/api/traces", ["service", "operation", "tags", "tag", "minDuration", "maxDuration",
                                  "start", "end", "limit", "lookback", "raw"]),
    "trace-v1": ("/api/traces/{id}", ["start", "end", "raw"]),
    "operations-v1": ("/api/operations", ["service", "spanKind"]),
    "dependencies": ("/api/dependencies", ["endTs", "lookback", "service"]),
    "metrics": ("/api/metrics/{metric}", ["service", "endTs", "lookback", "step", "ratePer", "quantile",
                                          "spanKind", "groupByOperation"]),
    "search-v3": ("/api/v3/traces", ["query.service_name", "query.operation_name", "query.attributes",
                                     "query.start_time_min", "query.start_time_max", "query.duration_min",
                                     "query.duration_max", "query.search_depth", "query.raw_traces"]),
    "trace-v3": ("/api/v3/traces/{id}", ["start_time", "end_time", "raw_traces"]),
    "operations-v3": ("/api/v3/operations", ["service", "span_kind"]),
    "sql": ("/api/sql", ["q", "max_rows", "format"]),
}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    data = tmp_path_factory.mktemp("fuzz-query") / "data"
    settings = Settings(data_dir=Path(data), sql_timeout=5.0, roles="query")
    store = SegmentStore(settings.data_dir, StoreConfig(flush_interval_s=3600))
    gate = Admission(store)
    for _ in range(3):
        gate.admit(decode_otlp_protobuf(make_request(4, 5).SerializeToString()))
    store.flush()
    gate.admit(decode_otlp_protobuf(make_request(2, 3).SerializeToString()))  # and an unflushed tail
    (query,) = Runtime.from_settings(settings).build(store).http  # no tokens file: the default tenant
    with TestClient(query.app, raise_server_exceptions=False) as test_client:
        yield test_client
    store.close()


def _quote(text: str, safe: str = "") -> str:
    # surrogatepass: a lone surrogate goes out as the bytes a hostile client would send (%ED%A0%80).
    return quote(text.encode("utf-8", "surrogatepass"), safe=safe)


def _path(template: str, value: str) -> str:
    return template.replace("{id}", _quote(value)).replace(
        "{metric}", "latencies" if len(value) % 2 else "calls")


def _query(params: list[tuple[str, str]]) -> str:
    return "?" + "&".join(f"{_quote(k)}={_quote(v)}" for k, v in params) if params else ""


@pytest.mark.parametrize("family", sorted(FAMILIES))
@given(data=st.data())
def test_query_parameters_never_get_a_5xx(client: TestClient, family: str, data: st.DataObject) -> None:
    template, names = FAMILIES[family]
    params = data.draw(st.lists(st.tuples(st.sampled_from(names), param_values), max_size=6))
    path = _path(template, data.draw(st.one_of(st.sampled_from(EDGE_TEXT), st.text(max_size=40),
                                               st.just("0" * 31 + "1"))))
    count_case()
    reply = client.get(path + _query(params))
    assert reply.status_code < 500, (path, params, reply.text[:300])


@given(path=st.one_of(st.sampled_from(EDGE_TEXT), st.text(max_size=60)))
def test_static_paths_never_get_a_5xx(client: TestClient, path: str) -> None:
    count_case()
    reply = client.get("/static/" + _quote(path, safe="/%"))
    assert reply.status_code < 500, (path, reply.text[:300])


_SPAN = {"traceId": "5" * 32, "spanId": "6" * 16, "name": "x",
         "startTimeUnixNano": "1", "endTimeUnixNano": "2"}


@given(body=json_documents({"resourceSpans": [{"scopeSpans": [{"spans": [_SPAN]}]}]}))
def test_transform_bodies_never_get_a_5xx(client: TestClient, body: bytes) -> None:
    count_case()
    reply = client.post("/api/transform", content=body, headers={"Content-Type": "application/json"})
    assert reply.status_code < 500, (body[:300], reply.text[:300])


@given(body=json_documents({"query": "SELECT trace_id FROM spans", "max_rows": 5, "format": "json"}))
def test_sql_bodies_never_get_a_5xx(client: TestClient, body: bytes) -> None:
    count_case()
    reply = client.post("/api/sql", content=body, headers={"Content-Type": "application/json"})
    assert reply.status_code < 500, (body[:300], reply.text[:300])
