"""The examples of docs/security.md and the tables of docs/operations.md, run and checked against a real
``spanlake serve``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from spanlake.config import Settings
from spanlake.limits import load_limits
from tests.docs.markdown import DOCS, env_assignments, example, prose
from tests.docs.test_examples import on_server
from tests.e2e.support import eventually
from tests.server import SpanlakeProcess

# Marked examples this module runs (tests/docs/test_examples.py checks that every marked one is run).
EXAMPLES = {("security.md", "tokens-file"), ("security.md", "token-env"), ("security.md", "token-read"),
            ("security.md", "org-id-read"), ("operations.md", "limits-file")}
TEAM_A_QUERY = "team-a-query-5b8e21d4c6a9f073"
OPS = "ops-metrics-94c2e7a1d0b6f385"


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SpanlakeProcess]:
    tmp = tmp_path_factory.mktemp("security-docs")
    tokens = tmp / "tokens.toml"
    tokens.write_text(example("security.md", "tokens-file"))
    proc = SpanlakeProcess(tmp / "data", extra_args=["--tokens-file", str(tokens)]).start()
    yield proc
    proc.stop()


def _shell(block: str, server: SpanlakeProcess) -> list[str]:
    run = subprocess.run(["bash", "-c", on_server(block, server)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return run.stdout.splitlines()


def test_the_documented_token_setup_keeps_tenants_apart(secured: SpanlakeProcess) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env |= env_assignments(on_server(example("security.md", "token-env"), secured))
    program = on_server(example("clients-opentelemetry.md", "otlp-grpc-python"), secured)
    run = subprocess.run([sys.executable, "-c", program], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    trace_id = run.stdout.split()[-1]
    reply = httpx.get(f"{secured.query_url}/api/traces/{trace_id}",
                      headers={"authorization": f"Bearer {TEAM_A_QUERY}"})
    assert reply.status_code == 200, reply.text
    team_a, team_b = (json.loads(line) for line in _shell(example("security.md", "token-read"), secured))
    assert team_a["data"] == ["checkout"]
    assert team_b["data"] == []


def test_the_documented_hashed_token_works(secured: SpanlakeProcess) -> None:
    reply = httpx.get(f"{secured.query_url}/api/services",
                      headers={"authorization": "Bearer team-a-grafana-3f7e9a1c2b8d4e60"})
    assert reply.status_code == 200


def test_org_id_example_reads_that_tenant(shared_spanlake_server: SpanlakeProcess) -> None:
    server = shared_spanlake_server
    span = {"traceId": "5af7183fb1d4cf5f5af7183fb1d4cf5f", "id": "352bff9a74ca9ad2", "name": "get",
            "timestamp": 1_700_000_000_000_000, "duration": 10, "localEndpoint": {"serviceName": "b-only"}}
    reply = httpx.post(f"{server.url('zipkin')}/api/v2/spans", json=[span],
                       headers={"X-Scope-OrgID": "team-b"})
    assert reply.status_code == 202
    (line,) = _shell(example("security.md", "org-id-read"), server)
    assert json.loads(line)["data"] == ["b-only"]
    default = httpx.get(f"{server.query_url}/api/services").json()["data"]
    assert "b-only" not in default


def test_the_documented_limits_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "limits.toml"
    path.write_text(example("operations.md", "limits-file"))
    limits = load_limits(path, Settings())
    assert limits.of("team-a").ingest_rate == 20000 and limits.of("team-a").max_bytes_per_trace == 5000000
    assert limits.of("team-z").retention_hours == 72


def test_the_metrics_table_lists_exactly_what_metrics_serves(secured: SpanlakeProcess) -> None:
    def families() -> set[str]:
        reply = httpx.get(f"{secured.url('admin')}/metrics", headers={"authorization": f"Bearer {OPS}"})
        assert reply.status_code == 200
        names = set()
        for family in text_string_to_metric_families(reply.text):
            suffix = "_total" if family.type == "counter" else ""
            names.add(family.name + suffix)
        return names

    served = eventually(families)
    assert metrics_table() == served


def metrics_table() -> set[str]:
    """The first column of the table whose header starts with ``| metric |`` in operations.md."""
    lines = prose((DOCS / "operations.md").read_text()).splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| metric |"))
    names = set()
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        names.add(line.strip("|").split("|")[0].strip().strip("`"))
    return names


def test_spanlake_sql_sends_the_token_from_its_environment(secured: SpanlakeProcess,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from spanlake import sql_cli

    args = argparse.Namespace(query="SELECT count(*) AS n FROM spans", data_dir=None, url=secured.query_url,
                              format="json", output=None, max_rows=10, timeout=10.0, memory_limit="1GB",
                              tenant=None)
    assert sql_cli.run(args) == 1  # no token
    assert "missing credentials" in capsys.readouterr().err
    monkeypatch.setenv("SPANLAKE_TOKEN", TEAM_A_QUERY)
    assert sql_cli.run(args) == 0
    assert json.loads(capsys.readouterr().out)["columns"] == ["n"]
