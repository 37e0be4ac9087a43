"""Failing to start, clearly: one line that names the thing and the flag to change, and exit code 2.

A port in use, a data directory that cannot be written or a bad flag value are the operator's to
fix, so they get a sentence, not a traceback (which goes to the debug log for whoever needs it).
The checks run before anything is bound or opened, so a failed start leaves nothing half-running.
"""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path

from spanlake.config import Settings, flag_name

EXIT_CODE = 2
_UDP_PORTS = ("jaeger_compact_port", "jaeger_binary_port")
_COLLECTOR_PORTS = ("otlp_grpc_port", "otlp_http_port", "jaeger_grpc_port", "jaeger_http_port",
                    "jaeger_compact_port", "jaeger_binary_port", "sampling_port", "zipkin_port")


class StartupError(Exception):
    """Something the operator must change before spanlake can start; the message says what."""


def check(settings: Settings) -> None:
    """Every check that can fail a start, before anything is opened or bound.

    Only local directories: an ``s3://`` ``--storage`` is checked when the store opens (serve.py),
    since reaching it can take seconds. With one, every role writes its sidecar cache under the
    data directory, so that must be writable too.
    """
    check_ports(settings)
    remote = settings.store_uri.startswith("s3://")
    if settings.has_role("collector") or remote:
        check_writable_dir(settings.data_dir, "data_dir")
    if settings.has_role("collector") and settings.wal_dir is not None:
        check_writable_dir(settings.wal_dir, "wal_dir")
    if settings.storage and not remote and (settings.has_role("collector") or settings.has_role("compactor")):
        check_writable_dir(Path(settings.storage), "storage")


def ports_in_use(settings: Settings) -> list[str]:
    names = ["admin_port", *_COLLECTOR_PORTS] if settings.has_role("collector") else ["admin_port"]
    if settings.has_role("query"):
        names.append("query_port")
    return [n for n in names if getattr(settings, n)]


def check_ports(settings: Settings) -> None:
    seen: dict[tuple[str, int], str] = {}
    for name in ports_in_use(settings):
        port: int = getattr(settings, name)
        kind = "udp" if name in _UDP_PORTS else "tcp"
        if (kind, port) in seen:
            both = f"{flag_name(seen[kind, port])} and {flag_name(name)}"
            raise StartupError(f"port {port} is given to both {both}; "
                               "give each listener its own port")
        seen[kind, port] = name
        _try_bind(settings.host, port, kind, name)


def _try_bind(host: str, port: int, kind: str, name: str) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM)
    try:
        # The same option the listeners use: a port held only by TIME_WAIT connections is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise StartupError(f"{kind.upper()} port {port} on {host} is already in use (another spanlake?); "
                               f"stop that process or choose another port with {flag_name(name)}") from exc
        raise StartupError(f"cannot listen on {host}:{port} ({exc.strerror}); "
                           f"check {flag_name('host')} and {flag_name(name)}") from exc
    finally:
        sock.close()


def check_writable_dir(path: Path, name: str) -> None:
    where = path.absolute()
    try:
        where.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StartupError(f"cannot create the directory {where} ({exc.strerror}); "
                           f"choose another with {flag_name(name)}") from exc
    if not where.is_dir():
        raise StartupError(f"{where} is not a directory; choose another with {flag_name(name)}")
    probe = where / f".spanlake-write-check-{os.getpid()}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise StartupError(f"cannot write in {where} ({exc.strerror}); "
                           f"fix its permissions or choose another with {flag_name(name)}") from exc
