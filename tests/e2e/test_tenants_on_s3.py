"""Tenants on object storage: a collector and a separate query node share a SeaweedFS bucket; two
tenants send the same trace ID (X-Scope-OrgID), each sees only its own spans through every read API of
the query node (Jaeger, SQL, Zipkin, and Tempo's: trace by ID, TraceQL search, tag values, metrics,
all read from the bucket), and each tenant's objects sit under ``tenant=NAME/`` in the bucket."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from spanlake.storage.location import open_location
from spanlake.storage.segments import list_segment_paths
from tests.e2e.support import eventually
from tests.e2e.test_tenants import TENANTS, send, views
from tests.seaweedfs import SeaweedFS
from tests.server import SpanlakeProcess


@pytest.fixture
def nodes(tmp_path: Path, seaweedfs: SeaweedFS,
          bucket: str) -> Iterator[tuple[SpanlakeProcess, SpanlakeProcess]]:
    common = ["--storage", f"s3://{bucket}", "--flush-interval", "0.3", "--refresh-interval", "0.3"]
    collector = SpanlakeProcess(tmp_path / "c", extra_args=[*common, "--roles", "collector"],
                                env=seaweedfs.env).start()
    try:
        query = SpanlakeProcess(tmp_path / "q", extra_args=[*common, "--roles", "query"],
                                env=seaweedfs.env).start()
        try:
            yield collector, query
        finally:
            query.stop()
    finally:
        collector.stop()


def test_tenants_are_separate_in_the_bucket_and_through_a_query_node(
        nodes: tuple[SpanlakeProcess, SpanlakeProcess], bucket: str) -> None:
    collector, query = nodes
    send(collector, "org-id")
    for tenant, suffix in TENANTS.items():
        mine = {f"frontend-{suffix}", f"backend-{suffix}"}
        # The query node ingested nothing: all it sees comes from listing the bucket.
        seen = eventually(lambda t=tenant: views(query, "org-id", t))
        assert {"tempo trace", "tempo search", "tempo structural", "tempo tag values",
                "tempo metrics", "sql", "v1 search", "zipkin search"} <= set(seen)
        for name, services in seen.items():
            expected = {"spm": {f"frontend-{suffix}"}, "v1 operations": {f"op-{suffix}"}}.get(name, mine)
            assert services == expected, (tenant, name, services)
    loc = open_location(f"s3://{bucket}")
    tops = {loc.relative(p).split("/")[1] for p in list_segment_paths(loc)}
    assert tops == {"tenant=team-a", "tenant=team-b"}
