"""Settings for ``spanlake serve``: every option is a flag and a ``SPANLAKE_*`` environment variable.

A flag beats the environment, which beats the default. A port of 0 turns that listener off.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

ROLES = ("collector", "query", "compactor")
_PATHS = ("wal_dir", "sampling_strategies", "tokens_file", "tls_cert", "tls_key", "tls_client_ca",
          "limits_file")


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("data")
    storage: str | None = None
    wal_dir: Path | None = None
    host: str = "0.0.0.0"
    roles: str = "collector,query"
    otlp_grpc_port: int = 4317
    otlp_http_port: int = 4318
    jaeger_grpc_port: int = 14250
    jaeger_http_port: int = 14268
    jaeger_compact_port: int = 6831
    jaeger_binary_port: int = 6832
    sampling_port: int = 5778
    zipkin_port: int = 9411
    query_port: int = 16686
    flush_interval: float = 5.0
    segment_max_spans: int = 100_000
    max_buffered_spans: int = 400_000
    max_request_bytes: int = 16 * 1024 * 1024
    sampling_strategies: Path | None = None
    compact_interval: float = 300.0
    retention_hours: float = 0.0
    refresh_interval: float = 1.0
    compactor_lease: float = 60.0
    compaction_grace: float = 600.0
    segment_cache_bytes: int = 4 * 1024**3
    sql_timeout: float = 30.0
    sql_max_rows: int = 10_000
    sql_memory_limit: str = "2GB"
    sql_max_concurrent: int = 4
    disk_reserve_bytes: int = 256 * 1024 * 1024
    max_spans_per_request: int = 50_000
    max_spans_per_trace: int = 50_000
    max_bytes_per_trace: int = 64 * 1024 * 1024
    # Ten years back: stops epoch-zero and 1938 start times without refusing replays of old data.
    max_span_age_hours: float = 87600.0
    max_span_future_hours: float = 8760.0
    search_max_window_hours: float = 24.0 * 31
    search_max_results: int = 1500
    sql_max_body_bytes: int = 1024 * 1024
    sql_max_result_bytes: int = 64 * 1024 * 1024
    http_header_timeout: float = 10.0
    http_body_timeout: float = 60.0
    zipkin_autocomplete_keys: str = ""
    log_level: str = "info"
    log_format: str = "text"
    admin_port: int = 14269
    tokens_file: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None
    limits_file: Path | None = None
    self_trace: bool = False

    @property
    def autocomplete_keys(self) -> list[str]:
        return [k.strip() for k in self.zipkin_autocomplete_keys.split(",") if k.strip()]

    def has_role(self, role: str) -> bool:
        return role in {r.strip() for r in self.roles.split(",")}

    @property
    def store_uri(self) -> str:
        """Where segments live: ``--storage``, else the data directory."""
        return self.storage or str(self.data_dir)


_HELP = {
    "data_dir": "local directory: the WAL (wal/), and the segments (spans/) unless --storage says otherwise",
    "storage": "where segments live: s3://BUCKET/PREFIX (endpoint, region and credentials from the "
               "standard AWS_* variables) or a directory (default: DATA_DIR)",
    "wal_dir": "write-ahead log directory (default: DATA_DIR/wal)",
    "host": "address every listener binds to",
    "roles": "comma-separated roles to run in this process: collector, query, compactor "
             "(a collector also competes for the compactor lease)",
    "otlp_grpc_port": "OTLP gRPC TraceService/Export",
    "otlp_http_port": "OTLP HTTP POST /v1/traces (protobuf and JSON)",
    "jaeger_grpc_port": "Jaeger gRPC api_v2 CollectorService/PostSpans",
    "jaeger_http_port": "Jaeger Thrift over HTTP POST /api/traces",
    "jaeger_compact_port": "Jaeger agent UDP, Thrift compact emitBatch",
    "jaeger_binary_port": "Jaeger agent UDP, Thrift binary emitBatch",
    "sampling_port": "Jaeger remote sampling GET /sampling?service=",
    "zipkin_port": "Zipkin POST /api/v2/spans and /api/v1/spans, and (with the query role) Zipkin's read API",
    "query_port": "query APIs (Jaeger, SQL) and the web UI",
    "flush_interval": "seconds between flushes of buffered spans into Parquet segments",
    "segment_max_spans": "flush early once this many spans are buffered",
    "max_buffered_spans": "refuse writes (HTTP 503 / RESOURCE_EXHAUSTED) above this many buffered spans",
    "max_request_bytes": "largest accepted request body, after decompression (HTTP 413 / RESOURCE_EXHAUSTED)",
    "sampling_strategies": "Jaeger sampling strategies file (default: probabilistic 0.001)",
    "compact_interval": "seconds between background compactions of settled hours (0: never)",
    "retention_hours": "delete hour partitions older than this many hours (0: keep everything)",
    "refresh_interval": "seconds between listings of the store for segments other processes wrote",
    "compactor_lease": "seconds a compactor's lease lasts without renewal before another process takes over",
    "compaction_grace": "seconds compaction keeps the segments it merged, for queries that listed them "
                        "(object storage only; a local store deletes them at once)",
    "segment_cache_bytes": "object storage only: bytes of segment files a query node keeps on local disk "
                           "(DATA_DIR/cache, least recently used first out; 0: read by byte ranges only)",
    "sql_timeout": "seconds before a SQL query is interrupted",
    "sql_max_rows": "rows returned by one SQL query at most (the rest is reported as truncated)",
    "sql_memory_limit": "DuckDB memory limit for SQL queries",
    "sql_max_concurrent": "SQL queries running at once at most",
    "disk_reserve_bytes": "refuse ingest (HTTP 503 / gRPC UNAVAILABLE, retryable) while the data or WAL disk "
                          "has less than this free: room kept for flushes and compaction",
    "max_spans_per_request": "refuse a request with more spans (HTTP 413 / RESOURCE_EXHAUSTED without "
                             "RetryInfo: not retryable)",
    "max_spans_per_trace": "spans kept per trace: later spans are rejected at ingest (partial success) and "
                           "a read returns the first ones with a warning",
    "max_bytes_per_trace": "bytes (in memory, Arrow) kept per trace, at ingest and on read, as "
                           "max_spans_per_trace",
    "max_span_age_hours": "reject (per span, partial success) spans that start more than this long ago",
    "max_span_future_hours": "reject (per span, partial success) spans that start more than this far ahead",
    "search_max_window_hours": "longest time range one search, dependency or metrics query may cover "
                               "(HTTP 400)",
    "search_max_results": "most traces one search may ask for (HTTP 400 above)",
    "sql_max_body_bytes": "largest POST /api/sql body (HTTP 413), read before and parsed after a query slot "
                          "is taken",
    "sql_max_result_bytes": "largest SQL result in memory: the query is stopped with HTTP 400 above it",
    "http_header_timeout": "seconds a client has to send a request's headers (every HTTP listener)",
    "http_body_timeout": "seconds a client has to send a request's body once its headers are in",
    "zipkin_autocomplete_keys": ("comma-separated tag keys the Zipkin API offers for autocomplete "
                                 "(Zipkin's AUTOCOMPLETE_KEYS)"),
    "log_level": "debug, info, warning or error",
    "log_format": "text, or json (one object per line, with request IDs)",
    "admin_port": "health (/health/live, /health/ready, Jaeger's admin /) and Prometheus /metrics",
    "tokens_file": "TOML file of bearer tokens and UI users, each with a tenant and rights "
                   "(default: no auth, for trusted networks only; see docs/security.md)",
    "tls_cert": "PEM certificate (chain) served by every TCP listener (with --tls-key)",
    "tls_key": "PEM private key of --tls-cert",
    "tls_client_ca": "PEM CA bundle: require client certificates it signed (mTLS)",
    "limits_file": "TOML file of per-tenant limits (ingest rate, burst, bytes per trace, retention, "
                   "SQL concurrency); see docs/operations.md",
    "self_trace": "export spanlake's own request spans, as service 'spanlake', to its OTLP receiver",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per setting, defaulting to its ``SPANLAKE_*`` variable, then to the built-in value."""
    for f in fields(Settings):
        flag = "--" + f.name.replace("_", "-")
        env = "SPANLAKE_" + f.name.upper()
        default = os.environ.get(env, f.default)
        # A bool is a plain switch (``--self-trace``) that also takes an explicit value.
        extra: dict[str, Any] = {"nargs": "?", "const": "true"} if isinstance(f.default, bool) else {}
        parser.add_argument(flag, dest=f.name, default=default, metavar=f.name.upper().split("_")[-1],
                            help=f"{_HELP[f.name]} [env {env}; default {f.default}]", **extra)


class SettingError(ValueError):
    """A flag or ``SPANLAKE_*`` value that cannot be used; the message names the flag."""


LOG_LEVELS = ("debug", "info", "warning", "error")


def settings_from_args(args: argparse.Namespace) -> Settings:
    values: dict[str, Any] = {}
    for f in fields(Settings):
        raw = getattr(args, f.name)
        values[f.name] = _convert(f.name, raw, Settings.__dataclass_fields__[f.name].default)
    settings = Settings(**values)
    _validate(settings)
    return settings


def flag_name(name: str) -> str:
    return f"--{name.replace('_', '-')} (SPANLAKE_{name.upper()})"


def _validate(settings: Settings) -> None:
    unknown = {r.strip() for r in settings.roles.split(",")} - set(ROLES)
    if unknown:
        raise SettingError(f"unknown role(s) {', '.join(sorted(unknown))} in {flag_name('roles')}; "
                           f"choose from {', '.join(ROLES)}")
    if settings.log_level.lower() not in LOG_LEVELS:
        raise SettingError(f"{flag_name('log_level')} must be one of {', '.join(LOG_LEVELS)}, "
                           f"not {settings.log_level!r}")
    for f in fields(Settings):
        value = getattr(settings, f.name)
        if f.name.endswith("_port") and not 0 <= value <= 65535:
            raise SettingError(f"{flag_name(f.name)} must be a port number from 0 to 65535, not {value}")
        if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
            raise SettingError(f"{flag_name(f.name)} must not be negative, not {value}")
    if settings.log_format not in ("text", "json"):
        raise SettingError(f"{flag_name('log_format')} must be text or json, not {settings.log_format!r}")


def _convert(name: str, raw: object, default: object) -> object:
    if raw is None or raw == "":
        return None if default is None else default
    if isinstance(default, bool):
        return str(raw).lower() in ("1", "true", "yes")
    try:
        if isinstance(default, int):
            return int(str(raw))
        if isinstance(default, float):
            return float(str(raw))
    except ValueError:
        kind = "an integer" if isinstance(default, int) else "a number"
        raise SettingError(f"{flag_name(name)} must be {kind}, not {raw!r}") from None
    if isinstance(default, Path) or name in _PATHS:
        return Path(str(raw))
    return str(raw)
