"""``spanlake sql "SELECT ..."``: the SQL API from a terminal, on a data directory or a running server.

With ``--data-dir`` the query runs here, on the committed segments (spans a running server has
not flushed yet are still in its WAL, so a server answers fresher via ``--url``). With ``--url``
the query goes to ``POST /api/sql`` as Arrow, so both paths print and export the same values.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, TextIO

import pyarrow as pa

from spanlake.query.formats import sql as fmt
from spanlake.storage.api import DEFAULT_TENANT, InvalidTenant, check_tenant
from spanlake.storage.location import StorageUnavailable, open_location
from spanlake.storage.sql import SqlEngine, SqlError
from spanlake.storage.store import SegmentStore

_CELL_WIDTH = 60  # longer cells are cut in the table view; CSV/JSON/--output keep everything
_OUTPUT_FORMATS = {".csv": "csv", ".parquet": "parquet", ".arrow": "arrow", ".arrows": "arrow"}


class CliError(Exception):
    pass


def add_parser(subparsers: Any) -> None:
    """Add the ``sql`` command to ``spanlake``'s subparsers (``argparse`` ``add_subparsers()``)."""
    p = subparsers.add_parser(
        "sql", help="run one read-only SQL query over the spans",
        description="Run one read-only SQL query (DuckDB dialect) over the views spans, events, links "
                    "and traces; see docs/sql.md.")
    p.add_argument("query", help='e.g. "SELECT service_name, count(*) FROM spans GROUP BY 1"')
    source = p.add_mutually_exclusive_group()
    source.add_argument("--data-dir", type=Path, default=None,
                        help="store directory to query here [env SPANLAKE_DATA_DIR; default data]")
    source.add_argument("--url", help="query a running server instead, e.g. http://localhost:16686 "
                                      "(with auth on, the bearer token comes from env SPANLAKE_TOKEN)")
    source.add_argument("--storage", default=None,
                        help="query the segments in s3://BUCKET/PREFIX (AWS_* variables) or a directory "
                             "here [env SPANLAKE_STORAGE]")
    p.add_argument("--tenant", default=None,
                   help="the tenant whose spans to query: its files (--data-dir, --storage) or X-Scope-OrgID "
                        "(--url, auth off) [default: the default tenant, or the token's]")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table",
                   help="how to print the result (default: table)")
    p.add_argument("--output", type=Path, default=None,
                   help="write the result to FILE.csv, FILE.parquet or FILE.arrow instead of printing it")
    p.add_argument("--max-rows", type=int, default=10_000, help="rows returned at most (default 10000)")
    p.add_argument("--timeout", type=float, default=30.0,
                   help="seconds before the query is interrupted (--data-dir; a server uses its own)")
    p.add_argument("--memory-limit", default="2GB", help="DuckDB memory limit (--data-dir)")


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run the command; 0 on success, 1 when the query or its source fails."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        output_format = _output_format(args.output)
        if args.url:
            table, truncated = _from_server(args.url, args.query, args.max_rows, args.tenant)
        else:
            table, truncated = _from_directory(args, args.query)
    except (SqlError, CliError) as e:
        print(f"spanlake sql: {e}", file=err)
        return 1
    if args.output is not None and output_format is not None:
        args.output.write_bytes(fmt.encode(table, output_format))
        print(f"wrote {table.num_rows} rows to {args.output}", file=err)
    else:
        _print(table, truncated, args.format, out)
    if truncated:
        print(f"(stopped at {table.num_rows} rows: the result has more; raise --max-rows)", file=err)
    return 0


def _output_format(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return _OUTPUT_FORMATS[path.suffix.lower()]
    except KeyError:
        raise CliError(f"--output {path}: name a .csv, .parquet or .arrow file") from None


def _from_directory(args: argparse.Namespace, query: str) -> tuple[pa.Table, bool]:
    storage = getattr(args, "storage", None) or (
        None if args.data_dir else os.environ.get("SPANLAKE_STORAGE"))
    if storage:
        with tempfile.TemporaryDirectory(prefix="spanlake-sql-") as scratch:
            try:
                store = SegmentStore(Path(scratch), writable=False, storage=open_location(storage))
                return _execute(args, query, store)
            except (StorageUnavailable, ValueError) as e:
                raise CliError(str(e)) from None
    data_dir = args.data_dir or Path(os.environ.get("SPANLAKE_DATA_DIR", "data"))
    if not data_dir.is_dir():
        raise CliError(f"no store at {data_dir} (pass --data-dir, --storage or --url)")
    return _execute(args, query, SegmentStore(data_dir, writable=False))


def _execute(args: argparse.Namespace, query: str, store: SegmentStore) -> tuple[pa.Table, bool]:
    tenant = args.tenant or DEFAULT_TENANT
    try:
        check_tenant(tenant)
    except InvalidTenant as e:
        raise CliError(str(e)) from None
    engine = SqlEngine(lambda: store.snapshot(tenant), timeout_s=args.timeout, max_rows=max(0, args.max_rows),
                       memory_limit=args.memory_limit, max_concurrent=1)
    try:
        result = engine.execute(query)
    finally:
        engine.close()
    return result.table, result.truncated


def _from_server(url: str, query: str, max_rows: int, tenant: str | None = None) -> tuple[pa.Table, bool]:
    body = json.dumps({"query": query, "max_rows": max_rows, "format": "arrow"}).encode()
    headers = {"Content-Type": "application/json"}
    if tenant:
        headers["X-Scope-OrgID"] = tenant
    token = os.environ.get("SPANLAKE_TOKEN")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url.rstrip("/") + "/api/sql", data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=600) as response:
            data = response.read()
            truncated = response.headers.get("X-Spanlake-Truncated") == "true"
    except urllib.error.HTTPError as e:
        raise CliError(_server_error(e)) from None
    except (urllib.error.URLError, OSError) as e:
        raise CliError(f"cannot reach {url}: {getattr(e, 'reason', e)}") from None
    return pa.ipc.open_stream(data).read_all(), truncated


def _server_error(e: urllib.error.HTTPError) -> str:
    raw = e.read().decode("utf-8", errors="replace")
    try:
        return str(json.loads(raw)["error"])
    except (ValueError, KeyError, TypeError):
        return f"HTTP {e.code}: {raw[:500]}"


def _print(table: pa.Table, truncated: bool, how: str, out: TextIO) -> None:
    if how == "csv":
        out.write(fmt.to_csv(table).decode())
    elif how == "json":
        doc = {"columns": table.column_names, "rows": fmt.rows_json(table), "truncated": truncated}
        out.write(json.dumps(doc) + "\n")
    else:
        out.write(render_table(table))


def render_table(table: pa.Table) -> str:
    """A plain-text grid: header, rule, rows (numbers right-aligned), and a row count."""
    rows = fmt.rows_json(table)
    cells = [[_cell(v) for v in row] for row in rows]
    names = table.column_names
    widths = [max([len(n), *(len(r[i]) for r in cells)]) for i, n in enumerate(names)]
    numeric = [pa.types.is_integer(f.type) or pa.types.is_floating(f.type) or pa.types.is_decimal(f.type)
               for f in table.schema]
    lines = [" | ".join(n.ljust(w) for n, w in zip(names, widths, strict=True)),
             "-+-".join("-" * w for w in widths)]
    for r in cells:
        lines.append(" | ".join(c.rjust(w) if num else c.ljust(w)
                                for c, w, num in zip(r, widths, numeric, strict=True)))
    lines.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(line.rstrip() for line in lines) + "\n"


def _cell(value: Any) -> str:
    if value is None:
        text = "NULL"
    elif isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, separators=(",", ":"))
    text = text.replace("\n", "\\n")
    return text if len(text) <= _CELL_WIDTH else text[: _CELL_WIDTH - 1] + "…"

