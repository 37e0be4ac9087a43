"""The ``spanlake`` command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from spanlake import config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="spanlake", description="Tracing backend on Parquet + DuckDB.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the collector, the query APIs and the UI",
                                description="Run spanlake: every receiver, the query APIs and the web UI "
                                            "on one embedded store.")
    config.add_arguments(serve)
    args = parser.parse_args(argv)
    if args.command == "serve":
        return _serve(config.settings_from_args(args))
    parser.error(f"unknown command {args.command}")
    return 2


def _serve(settings: config.Settings) -> int:
    from spanlake.serve import serve  # heavy imports only when serving

    logging.basicConfig(level=settings.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return asyncio.run(serve(settings))


if __name__ == "__main__":
    sys.exit(main())
