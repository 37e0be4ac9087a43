"""A tokens file for the auth tests, and the in-process listeners ``serve`` would run with it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from spanlake.config import Settings
from spanlake.serve import Runtime, open_store
from spanlake.storage.store import SegmentStore
from tests.server import free_port

TOKENS = {
    "ingest": "ingest-token-0123456789abcdef",
    "query": "query-token-0123456789abcdef",
    "sql": "sql-token-0123456789abcdef",
    "admin": "admin-token-0123456789abcdef",
    "team-a": "team-a-token-0123456789abcdef",
    "team-b": "team-b-token-0123456789abcdef",
}
UI_USER = ("alice", "alice-password-0123456789")

TOKENS_TOML = f"""
[[token]]
name = "ingest-only"
token = "{TOKENS['ingest']}"
tenant = "team-a"
rights = ["ingest"]

[[token]]
name = "query-only"
token = "{TOKENS['query']}"
tenant = "team-a"
rights = ["query"]

[[token]]
name = "sql-only"
token = "{TOKENS['sql']}"
tenant = "team-a"
rights = ["sql"]

[[token]]
name = "operator"
token = "{TOKENS['admin']}"
tenant = "team-a"
rights = ["admin"]

[[token]]
name = "team-a"
token = "{TOKENS['team-a']}"
tenant = "team-a"
rights = ["ingest", "query", "sql"]

[[token]]
name = "team-b"
token = "{TOKENS['team-b']}"
tenant = "team-b"
rights = ["ingest", "query", "sql"]

[[user]]
name = "{UI_USER[0]}"
password = "{UI_USER[1]}"
tenant = "team-a"
rights = ["query", "sql"]
"""


def write_tokens(directory: Path) -> Path:
    path = directory / "tokens.toml"
    path.write_text(TOKENS_TOML)
    return path


def bearer(right: str) -> dict[str, str]:
    return {"authorization": f"Bearer {TOKENS[right]}"}


def settings_with_auth(tmp: Path) -> Settings:
    ports = {f.name: free_port() for f in dataclasses.fields(Settings) if f.name.endswith("_port")}
    ports |= {"jaeger_compact_port": 0, "jaeger_binary_port": 0}
    return Settings(data_dir=tmp / "data", host="127.0.0.1", tokens_file=write_tokens(tmp),
                    compact_interval=0, **ports)


def runtime_and_store(settings: Settings) -> tuple[Runtime, SegmentStore]:
    runtime = Runtime.from_settings(settings)
    store = open_store(settings)
    runtime.metrics.watch_store(store)
    return runtime, store
