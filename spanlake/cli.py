"""The ``spanlake`` command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from typing import TYPE_CHECKING

from spanlake import config, sql_cli

if TYPE_CHECKING:
    from spanlake.storage.lease import LeaseKeeper


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="spanlake", description="Tracing backend on Parquet + DuckDB.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the collector, the query APIs and the UI",
                                description="Run spanlake: every receiver, the query APIs and the web UI "
                                            "on one embedded store.")
    config.add_arguments(serve)
    sql_cli.add_parser(commands)
    compact = commands.add_parser("compact", help="merge small segments and apply retention",
                                  description="Merge each hour partition's small segments into larger "
                                              "ones; with --retention-hours, first delete older hours. "
                                              "Run it while no spanlake serve writes to the directory "
                                              "(serve compacts in the background itself).")
    compact.add_argument("--data-dir", default="data", help="store directory [default data]")
    compact.add_argument("--storage", default="",
                         help="s3://BUCKET/PREFIX or a directory where the segments are [default DATA_DIR]")
    compact.add_argument("--max-output-spans", type=int, default=None,
                         help="spans per merged segment at most [default 250000]")
    compact.add_argument("--retention-hours", type=float, default=0.0,
                         help="delete hour partitions older than this (0: keep) [default 0]")
    commands.add_parser("token", help="print a new random bearer token and its SHA-256",
                        description="Print a new random token (give it to the client) and the "
                                    "token_sha256 line for the tokens file (see docs/security.md).")
    args = parser.parse_args(argv)
    if args.command == "token":
        from spanlake.auth import new_token

        token, digest = new_token()
        print(f"token: {token}\ntoken_sha256 = \"{digest}\"")
        return 0
    if args.command == "serve":
        return _serve(args)
    if args.command == "sql":
        return sql_cli.run(args)
    if args.command == "compact":
        return _compact(args)
    parser.error(f"unknown command {args.command}")
    return 2


def _compact(args: argparse.Namespace) -> int:
    from pathlib import Path

    from spanlake.storage.compaction import MERGED_SEGMENT_SPANS
    from spanlake.storage.lease import LeaseKeeper, open_lease
    from spanlake.storage.location import open_location
    from spanlake.storage.segments import HOUR_NS
    from spanlake.storage.store import SegmentStore
    from spanlake.storage.wal_lock import WalDirectoryInUse

    logging.basicConfig(level="INFO", stream=sys.stderr, format="%(message)s")
    try:  # writable: replays and flushes a leftover WAL first
        store = SegmentStore(Path(args.data_dir), storage=open_location(args.storage or args.data_dir))
    except WalDirectoryInUse as e:
        print(f"spanlake: {e}", file=sys.stderr)
        return 1
    # The same lease as the background compactors: never two compactions of one store at once.
    keeper = LeaseKeeper(open_lease(store.loc, f"cli-{store.writer_id}", 60.0), period_s=20.0).start()
    try:
        if not eventually_held(keeper):
            print("spanlake: another process holds the compactor lease of this store; try later",
                  file=sys.stderr)
            return 1
        if args.retention_hours > 0:
            dropped = store.drop_older_than(time.time_ns() - int(args.retention_hours * HOUR_NS),
                                            lease=keeper.lease)
            print(f"dropped {dropped} hour partitions")
        result = store.compact(args.max_output_spans or MERGED_SEGMENT_SPANS, lease=keeper.lease)
        print(f"merged {result.inputs} segments into {result.outputs} ({result.spans} spans)")
    finally:
        keeper.stop()
        store.close()
    return 0


def eventually_held(keeper: LeaseKeeper, timeout_s: float = 5.0) -> bool:
    """Whether the keeper's first attempt(s) got the lease within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not keeper.lease.held():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _serve(args: argparse.Namespace) -> int:
    from spanlake import startup
    from spanlake.observe import configure_logging
    from spanlake.serve import serve  # heavy imports only when serving

    try:
        settings = config.settings_from_args(args)
        configure_logging(settings.log_level, settings.log_format)
        startup.check(settings)
        return asyncio.run(serve(settings))
    except (config.SettingError, startup.StartupError) as exc:
        # One line for the operator; the traceback only for whoever runs at debug level.
        logging.getLogger("spanlake").debug("start failed", exc_info=exc)
        print(f"spanlake: error: {exc}", file=sys.stderr)
        return startup.EXIT_CODE


if __name__ == "__main__":
    sys.exit(main())
