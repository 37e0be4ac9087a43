"""The UI benchmark's ingest: the generated trace goes out in batches under the server's per-request
span limit, every span exactly once, each with its own resource and scope."""

from __future__ import annotations

from bench.ui_render import batches, generate_trace


def test_batches_hold_every_span_once_under_the_size() -> None:
    _, doc = generate_trace(2_345, seed=3)
    parts = list(batches(doc, size=500))
    sizes = [len(p["resourceSpans"][0]["scopeSpans"][0]["spans"]) for p in parts]
    assert max(sizes) <= 500
    sent = [(p["resourceSpans"][0]["resource"]["attributes"][0]["value"]["stringValue"], s["spanId"])
            for p in parts for s in p["resourceSpans"][0]["scopeSpans"][0]["spans"]]
    expected = [(rs["resource"]["attributes"][0]["value"]["stringValue"], s["spanId"])
                for rs in doc["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]
    assert sent == expected
    assert all(p["resourceSpans"][0]["scopeSpans"][0]["scope"] == {"name": "bench"} for p in parts)
