"""``spanlake sql`` as a user runs it (a subprocess) on a store directory holding Jaeger's fixtures."""

from __future__ import annotations

import argparse
import csv
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from spanlake import sql_cli
from spanlake.storage.store import SegmentStore
from tests.storage.sql_support import ATTACKS, all_spans, attack, load_store

COMMAND = [sys.executable, "-m", "spanlake", "sql"]
# One attack of each kind through a real process; every attack runs through the command's ``run``
# below (a process start costs about a second of CPU, and these run on two cores).
NAMED_ATTACKS = [
    "SELECT * FROM read_csv('/etc/passwd')",
    "COPY (SELECT * FROM spans) TO '{tmp}/out.csv'",
    "ATTACH '{tmp}/x.duckdb' AS x",
    "INSTALL httpfs",
    "SET enable_external_access = true",
]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("sqlcli") / "data"
    load_store(path).close()  # closing flushes: the CLI reads committed segments
    yield path


def cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*COMMAND, *args, "--data-dir", str(data_dir)], capture_output=True, text=True,
                          timeout=120)


def test_prints_a_table(data_dir: Path) -> None:
    r = cli(data_dir, "SELECT service_name, count(*) AS spans FROM spans "
                      "WHERE service_name LIKE 'example-%' GROUP BY 1 ORDER BY 1")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "service_name      | spans",
        "------------------+------",
        "example-service-1 |     3",
        "example-service-2 |     1",
        "example-service-3 |     1",
        "(3 rows)",
    ]


def run_here(data_dir: Path, query: str, capsys: pytest.CaptureFixture[str],
             **options: object) -> tuple[int, str, str]:
    """The command's ``run`` in this process: for output details, without paying a process start each."""
    values: dict[str, object] = {"query": query, "data_dir": data_dir, "url": None, "format": "table",
                                 "output": None, "max_rows": 100, "timeout": 10.0, "memory_limit": "1GB",
                                 "tenant": None}
    code = sql_cli.run(argparse.Namespace(**{**values, **options}))
    out, err = capsys.readouterr()
    return code, out, err


def test_csv_and_json_formats(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    query = "SELECT trace_id, span_count FROM traces WHERE trace_id = '00000000000000000000000000000011'"
    _, as_csv, _ = run_here(data_dir, query, capsys, format="csv")
    assert list(csv.reader(io.StringIO(as_csv))) == [
        ["trace_id", "span_count"], ["00000000000000000000000000000011", "5"]]
    _, as_json, _ = run_here(data_dir, query, capsys, format="json")
    assert json.loads(as_json) == {"columns": ["trace_id", "span_count"],
                                   "rows": [["00000000000000000000000000000011", 5]], "truncated": False}


def test_output_files(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parquet, text = tmp_path / "spans.parquet", tmp_path / "spans.csv"
    r = cli(data_dir, "SELECT * FROM spans", "--output", str(parquet))
    assert r.returncode == 0 and r.stdout == "" and f"to {parquet}" in r.stderr
    assert pq.read_table(parquet).num_rows == all_spans().num_rows
    code, _, _ = run_here(data_dir, "SELECT span_id FROM spans", capsys, output=text, max_rows=1000)
    assert code == 0 and len(text.read_text().splitlines()) == all_spans().num_rows + 1


def test_max_rows_cuts_and_says_so(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_here(data_dir, "SELECT span_id FROM spans", capsys, max_rows=2, format="csv")
    assert code == 0 and len(out.splitlines()) == 3
    assert "raise --max-rows" in err


def test_unknown_output_suffix_is_refused(data_dir: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_here(data_dir, "SELECT 1", capsys, output=tmp_path / "x.xlsx")
    assert code == 1 and ".csv, .parquet or .arrow" in err


def test_sql_error_exits_1_with_duckdbs_message(data_dir: Path) -> None:
    r = cli(data_dir, "SELECT nope FROM spans")
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.startswith("spanlake sql: Binder Error") and '"nope"' in r.stderr


def test_missing_store_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_here(tmp_path / "absent", "SELECT 1", capsys)
    assert code == 1 and "no store at" in err
    assert not (tmp_path / "absent").exists()


def test_named_attacks_fail_in_the_cli_process(data_dir: Path, tmp_path: Path) -> None:
    store = SegmentStore(data_dir, writable=False)
    procs = [subprocess.Popen([*COMMAND, attack(q, store, tmp_path), "--data-dir", str(data_dir)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for q in NAMED_ATTACKS]  # in parallel: each process pays the import time once
    messages = dict(ATTACKS)
    for query, proc in zip(NAMED_ATTACKS, procs, strict=True):
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 1 and out == "", query
        assert err.startswith("spanlake sql: ") and messages[query] in err, (query, err)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("query", "message"), ATTACKS, ids=[q for q, _ in ATTACKS])
def test_every_attack_fails_through_run(data_dir: Path, tmp_path: Path, query: str, message: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    store = SegmentStore(data_dir, writable=False)
    code, out, err = run_here(data_dir, attack(query, store, tmp_path), capsys)
    assert code == 1 and out == "" and message in err
    assert list(tmp_path.iterdir()) == []


def test_queries_a_bucket_in_place(tmp_path: Path, bucket: str) -> None:
    from spanlake.storage.location import open_location
    from spanlake.storage.store import StoreConfig

    store = SegmentStore(tmp_path / "w", StoreConfig(flush_interval_s=3600),
                         storage=open_location(f"s3://{bucket}"))
    from tests.storage.spans import span, spans_table

    store.write(all_spans())
    store.for_tenant("team-x").write(spans_table([span(1, 1, "x-only")]))
    store.close()
    r = subprocess.run([*COMMAND, "SELECT count(*) AS spans FROM spans", "--storage", f"s3://{bucket}",
                        "--format", "csv"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ['"spans"', str(all_spans().num_rows)]
    r = subprocess.run([*COMMAND, "SELECT DISTINCT service_name FROM spans", "--storage", f"s3://{bucket}",
                        "--tenant", "team-x", "--format", "csv"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ['"service_name"', '"x-only"']


def test_tenant_picks_that_tenants_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.storage.spans import span, spans_table

    store = SegmentStore(tmp_path / "data")
    store.for_tenant("team-x").write(spans_table([span(1, 1, "x-only")]))
    store.close()
    query = "SELECT DISTINCT service_name FROM spans"
    _, mine, _ = run_here(tmp_path / "data", query, capsys, format="json", tenant="team-x")
    assert json.loads(mine)["rows"] == [["x-only"]]
    _, default, _ = run_here(tmp_path / "data", query, capsys, format="json")
    assert json.loads(default)["rows"] == []
    code, _, err = run_here(tmp_path / "data", query, capsys, tenant="../x")
    assert code == 1 and "invalid tenant" in err
