"""A real ``spanlake serve`` in a subprocess, on free loopback ports, for end-to-end tests.

Use the ``spanlake_server`` fixture (from tests/conftest.py), or ``SpanlakeProcess`` directly for
tests that kill and restart the server.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

_PORT_FLAGS = {
    "otlp_grpc": "--otlp-grpc-port",
    "otlp_http": "--otlp-http-port",
    "jaeger_grpc": "--jaeger-grpc-port",
    "jaeger_http": "--jaeger-http-port",
    "jaeger_compact": "--jaeger-compact-port",
    "jaeger_binary": "--jaeger-binary-port",
    "sampling": "--sampling-port",
    "zipkin": "--zipkin-port",
    "query": "--query-port",
    "admin": "--admin-port",
}
_UDP = {"jaeger_compact", "jaeger_binary"}


_HANDED_OUT: set[int] = set()


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A loopback port nothing listens on, never one this test run handed out before.

    The kernel may give back a port it just gave us once the probe socket closes, so two listeners
    of one server could be handed the same port (CI saw --admin-port == --zipkin-port); remembering
    every port handed out rules that out.
    """
    while True:
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


@dataclass
class SpanlakeProcess:
    data_dir: Path
    extra_args: list[str] = field(default_factory=list)
    ports: dict[str, int] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        if not self.ports:
            self.ports = {k: free_port(socket.SOCK_DGRAM if k in _UDP else socket.SOCK_STREAM)
                          for k in _PORT_FLAGS}
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}-server.log"

    scheme: str = "http"  # "https" for a server started with --tls-cert

    def url(self, port: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.ports[port]}"

    @property
    def query_url(self) -> str:
        return self.url("query")

    @property
    def otlp_grpc_endpoint(self) -> str:
        return f"127.0.0.1:{self.ports['otlp_grpc']}"

    def start(self, timeout: float = 30.0) -> SpanlakeProcess:
        args = [sys.executable, "-m", "spanlake", "serve", "--data-dir", str(self.data_dir),
                "--host", "127.0.0.1", "--log-level", "info"]
        for name, flag in _PORT_FLAGS.items():
            args += [flag, str(self.ports[name])]
        offset = len(self.log())  # a restart appends to the same log: look only at the new part
        log = open(self.log_path, "ab")
        env = {k: v for k, v in os.environ.items() if not k.startswith("SPANLAKE_")} | self.env
        self.proc = subprocess.Popen(args + self.extra_args, stdout=log, stderr=log, env=env)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"spanlake serve exited with {self.proc.returncode}:\n{self.log()}")
            if "spanlake ready" in self.log()[offset:]:
                return self
            time.sleep(0.05)
        raise TimeoutError(f"spanlake serve not ready after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait: the graceful shutdown path."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()  # never leave a server behind; the test that waited still fails
            self.proc.wait(10)
            raise

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None
