"""The compactor lease: at most one process compacts and applies retention at a time, no
coordination service.

On S3 the lease is an object, ``<root>/_spanlake/compactor-lease.json``, written only with
conditional puts (``If-None-Match: *`` to create it, ``If-Match: <ETag>`` to renew or take it
over), so of two processes racing for it exactly one wins. pyarrow's filesystem has no conditional
writes, so these few requests go through boto3; everything else uses pyarrow.

Expiry needs no synchronised clocks: a contender takes the lease over only after it has seen the
same ETag, unchanged, for ``ttl_s`` of its own monotonic clock. The holder renews every
``ttl_s / 3`` and stops trusting its lease ``0.8 * ttl_s`` after the start of its last successful
renewal, which is before any contender can have waited ``ttl_s`` since seeing that renewal. The
guarantee rests on the conditional puts and on clocks running at about the same rate; a process
stalled for longer than the lease (a frozen VM) can still overlap with the next holder for the
duration of one write, which compaction tolerates (merged segments are named by a hash of their
inputs, and replaced inputs are deleted only after a grace period).

In a local directory the lease is an ``flock`` on ``<root>/_spanlake/compactor.lock``: the kernel
releases it when the process dies, so takeover is immediate. It coordinates processes of one host.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any, Protocol

from spanlake.storage.location import CONTROL_DIR, Location

log = logging.getLogger(__name__)

_SAFETY = 0.8


class Lease(Protocol):
    holder: str

    def try_acquire(self) -> bool:
        """Acquire the lease, or renew it if held; True while this process holds it."""
        ...

    def held(self) -> bool:
        """True while this process may act as the compactor (by its own clock, no request)."""
        ...

    def release(self) -> None: ...


class LocalLease:
    def __init__(self, loc: Location, holder: str) -> None:
        self.holder = holder
        self._path = Path(loc.join(CONTROL_DIR, "compactor.lock"))
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        if self._fd is None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            os.ftruncate(fd, 0)
            os.write(fd, self.holder.encode())
            self._fd = fd
        return True

    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class S3Lease:
    def __init__(self, loc: Location, holder: str, ttl_s: float) -> None:
        import boto3  # only object-storage deployments need it

        self.holder = holder
        self.ttl_s = ttl_s
        self._client = boto3.client("s3", endpoint_url=loc.endpoint_url, region_name=loc.region)
        self._bucket, _, prefix = loc.root.partition("/")
        self.key = "/".join(p for p in (prefix, CONTROL_DIR, "compactor-lease.json") if p)
        self._etag: str | None = None  # of our own last write, while we hold the lease
        self._valid_until = 0.0
        self._seen: tuple[str, float] | None = None  # another holder's ETag, first seen when

    def held(self) -> bool:
        return self._etag is not None and time.monotonic() < self._valid_until

    def try_acquire(self) -> bool:
        current = self._read()
        if current is None:
            return self._put(IfNoneMatch="*")
        etag, holder = current
        if holder == self.holder and etag == self._etag:
            return self._put(IfMatch=etag)  # renew
        self._etag = None
        now = time.monotonic()
        if self._seen is None or self._seen[0] != etag:
            self._seen = (etag, now)
            return False
        if now - self._seen[1] < self.ttl_s:
            return False
        log.info("compactor lease of %s expired; taking it over", holder)
        return self._put(IfMatch=etag)

    def release(self) -> None:
        """Give the lease up early (a graceful stop), so another process need not wait it out."""
        if self._etag is not None:
            try:
                self._client.delete_object(Bucket=self._bucket, Key=self.key, IfMatch=self._etag)
            except Exception:  # best effort: it expires anyway
                log.debug("could not release the compactor lease", exc_info=True)
            self._etag = None

    def _read(self) -> tuple[str, str] | None:
        from botocore.exceptions import ClientError

        try:
            obj = self._client.get_object(Bucket=self._bucket, Key=self.key)
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise
        body = json.loads(obj["Body"].read() or b"{}")
        return str(obj["ETag"]), str(body.get("holder", ""))

    def _put(self, **condition: Any) -> bool:
        from botocore.exceptions import ClientError

        started = time.monotonic()
        body = json.dumps({"holder": self.holder, "renewed_at": time.time(), "ttl_s": self.ttl_s})
        try:
            reply = self._client.put_object(Bucket=self._bucket, Key=self.key, Body=body.encode(),
                                            ContentType="application/json", **condition)
        except ClientError as e:
            code = e.response.get("Error", {}).get("Code")
            if code in ("PreconditionFailed", "ConditionalRequestConflict", "412", "409"):
                self._etag = None
                return False
            raise
        self._etag = str(reply["ETag"])
        self._valid_until = started + _SAFETY * self.ttl_s
        self._seen = None
        return True


def open_lease(loc: Location, holder: str, ttl_s: float) -> Lease:
    return LocalLease(loc, holder) if loc.is_local else S3Lease(loc, holder, ttl_s)


class LeaseKeeper:
    """Keeps trying to acquire, and then renewing, a lease in a daemon thread."""

    def __init__(self, lease: Lease, period_s: float) -> None:
        self.lease = lease
        self._period_s = period_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="spanlake-lease", daemon=True)
        self._was_held = False

    def start(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.lease.release()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                held = self.lease.try_acquire()
            except Exception as e:  # the store is unreachable: the lease simply lapses
                log.warning("compactor lease: %s", e)
                held = False
            if held != self._was_held:
                log.info("compactor lease %s by %s", "acquired" if held else "lost", self.lease.holder)
                self._was_held = held
            self._stop.wait(self._period_s)
