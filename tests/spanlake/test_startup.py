"""A start that cannot succeed says why in one line, names the flag to change, and exits 2."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from tests.server import _PORT_FLAGS, SpanlakeProcess, free_port


def _start(data_dir: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``spanlake serve`` with every listener off unless ``args`` turns it on."""
    off = [x for flag in _PORT_FLAGS.values() for x in (flag, "0")]
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SPANLAKE_")} | (env or {})
    return subprocess.run([sys.executable, "-m", "spanlake", "serve", "--host", "127.0.0.1",
                           "--data-dir", str(data_dir), *off, *args],
                          capture_output=True, text=True, timeout=60, env=environ)


def _one_clear_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("spanlake: error: ")
    return lines[0]


def test_a_second_server_on_the_same_ports_names_the_port_and_its_flag(tmp_path: Path) -> None:
    first = SpanlakeProcess(tmp_path / "a").start()
    try:
        args = [x for name, flag in _PORT_FLAGS.items() for x in (flag, str(first.ports[name]))]
        line = _one_clear_line(_start(tmp_path / "b", *args))
    finally:
        first.stop()
    assert "already in use" in line
    assert any(f"port {port} " in line for port in first.ports.values())
    assert any(flag in line for flag in _PORT_FLAGS.values())
    assert "spanlake stopped" not in line


def test_a_query_port_in_use_is_named(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = _one_clear_line(_start(tmp_path / "data", "--query-port", str(port)))
    assert f"TCP port {port} on 127.0.0.1 is already in use" in line and "--query-port" in line


def test_two_listeners_on_one_port_are_refused(tmp_path: Path) -> None:
    port = str(free_port())
    line = _one_clear_line(_start(tmp_path / "data", "--query-port", port, "--otlp-http-port", port))
    assert "--otlp-http-port" in line and "--query-port" in line


def test_a_data_directory_that_cannot_be_created_is_named_absolutely(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    line = _one_clear_line(_start(blocker / "data"))
    assert str((blocker / "data").absolute()) in line and "--data-dir" in line


def test_a_bad_flag_value_names_the_flag(tmp_path: Path) -> None:
    line = _one_clear_line(_start(tmp_path / "data", "--query-port", "abc"))
    assert "--query-port" in line and "'abc'" in line
    line = _one_clear_line(_start(tmp_path / "data", "--query-port", "70000"))
    assert "0 to 65535" in line


def test_a_bad_environment_value_names_the_variable(tmp_path: Path) -> None:
    line = _one_clear_line(_start(tmp_path / "data", env={"SPANLAKE_FLUSH_INTERVAL": "soon"}))
    assert "SPANLAKE_FLUSH_INTERVAL" in line
    line = _one_clear_line(_start(tmp_path / "data", env={"SPANLAKE_ROLES": "collector,gateway"}))
    assert "gateway" in line and "--roles" in line


def test_the_ready_line_names_the_absolute_data_directory(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    server = SpanlakeProcess(Path("relative-data"))
    server.log_path = tmp_path / "server.log"
    server.start()
    server.stop()
    assert f"data in {tmp_path / 'relative-data'}" in server.log()


def test_an_unreachable_object_store_is_one_line_naming_the_bucket_and_the_flag(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens: what a start sees while S3 is down
    env = {"AWS_ENDPOINT_URL": dead, "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"}
    line = _one_clear_line(_start(tmp_path / "data", "--storage", "s3://no-such-bucket/prefix",
                                  "--log-level", "error", env=env))
    assert "s3://no-such-bucket/prefix" in line and "--storage" in line
