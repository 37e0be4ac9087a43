"""Grafana's Tempo data source against a real ``spanlake serve``: spans from the OpenTelemetry SDK,
then the requests the data source makes, in its order (Save & test, search, tags, trace, metrics)."""

from __future__ import annotations

import time

import httpx
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from tests.e2e.support import eventually
from tests.e2e.test_real_clients import emit
from tests.query.tempo.proto_fields import unknown_fields
from tests.server import SpanlakeProcess


def test_grafana_tempo_data_source_flow(shared_spanlake_server: SpanlakeProcess) -> None:
    server = shared_spanlake_server
    base = f"{server.query_url}/tempo"
    exporter = OTLPSpanExporter(endpoint=f"{server.url('otlp_http')}/v1/traces")
    trace_id = emit(exporter, "tempo-e2e")
    now = int(time.time())
    window = {"start": now - 600, "end": now + 60}

    assert httpx.get(f"{base}/api/echo").status_code == 200

    def searched() -> dict[str, object]:
        r = httpx.get(f"{base}/api/search", params={
            "q": '{ resource.service.name = "tempo-e2e" && status = error }', "limit": 20, "spss": 3,
            **window})
        assert r.status_code == 200, r.text
        body = r.json()
        assert [t["traceID"] for t in body["traces"]] == [trace_id]
        return dict(body)

    body = eventually(searched)
    assert unknown_fields(body, "SearchResponse") == []
    (trace,) = body["traces"]  # type: ignore[attr-defined]
    assert trace["rootServiceName"] == "tempo-e2e" and trace["rootTraceName"] == "GET /cart"
    assert trace["spanSets"][0]["spans"][0]["name"] == "SELECT"

    tags = httpx.get(f"{base}/api/v2/search/tags", params={"limit": 5000}).json()
    assert "db.system" in next(s["tags"] for s in tags["scopes"] if s["name"] == "span")
    values = httpx.get(f"{base}/api/v2/search/tag/resource.service.name/values",
                       params={"q": '{ name = "SELECT" }'}).json()["tagValues"]
    assert {"type": "string", "value": "tempo-e2e"} in values

    r = httpx.get(f"{base}/api/v2/traces/{trace_id}", headers={"Accept": "application/protobuf"})
    assert r.status_code == 200
    assert r.content[0] == 0x0A  # field 1, the trace, then the OTLP TracesData bytes
    length, pos = 0, 1
    for shift in range(0, 64, 7):
        byte = r.content[pos]
        pos += 1
        length |= (byte & 0x7F) << shift
        if byte < 0x80:
            break
    data = TracesData.FromString(r.content[pos:pos + length])
    names = sorted(s.name for rs in data.resource_spans for ss in rs.scope_spans for s in ss.spans)
    assert names == ["GET /cart", "SELECT"]

    metrics = httpx.get(f"{base}/api/metrics/query_range", params={
        "q": '{ resource.service.name = "tempo-e2e" } | count_over_time() by (name)', "step": "60s",
        **window}).json()
    assert unknown_fields(metrics, "QueryRangeResponse") == []
    totals = {s["labels"][0]["value"]["stringValue"]: sum(p["value"] for p in s["samples"])
              for s in metrics["series"]}
    assert totals == {"GET /cart": 1, "SELECT": 1}
