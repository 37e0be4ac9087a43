"""Where the store lives: a local directory or an S3 bucket prefix, behind one ``pyarrow.fs`` path.

Everything under the store root (segments, sidecars, the compactor lease) is read and written
through a ``Location``, so the local store and the bucket are the same code. Only the WAL stays on
local disk (``storage/wal.py``): it is what makes an acknowledgement durable, and it must be fast.

Object storage is named ``s3://BUCKET/PREFIX``. Endpoint, region and credentials come from the
variables every S3 tool reads (``AWS_ENDPOINT_URL``, ``AWS_REGION``, ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``); pyarrow's URI options (``?endpoint_override=...&region=...``) work too.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pyarrow.fs as pafs

# The directory under the root that is not span data: the compactor lease lives here, so engines
# that read ``spans/`` never see it.
CONTROL_DIR = "_spanlake"


class StorageUnavailable(OSError):
    """The object store could not be reached or answered with an error: nothing was changed, and
    the caller should retry later (query APIs answer 503 with this message)."""


@dataclass(frozen=True)
class Location:
    """A store root inside a pyarrow filesystem (``root`` has no trailing slash)."""

    fs: pafs.FileSystem
    root: str
    uri: str  # how the user named it, for messages
    endpoint_url: str | None = None  # S3 only: for the lease's conditional puts (storage/lease.py)
    region: str | None = None

    @property
    def is_local(self) -> bool:
        return isinstance(self.fs, pafs.LocalFileSystem)

    def join(self, *parts: str) -> str:
        return posixpath.join(self.root, *parts)

    def relative(self, path: str) -> str:
        return posixpath.relpath(path, self.root)

    def bucket(self) -> str:
        return self.root.split("/", 1)[0]


def local_location(directory: Path) -> Location:
    directory = Path(directory).absolute()
    directory.mkdir(parents=True, exist_ok=True)
    return Location(pafs.LocalFileSystem(), directory.as_posix(), str(directory))


def open_location(spec: str | Path) -> Location:
    """``s3://BUCKET/PREFIX`` (created if missing) or a local directory path."""
    text = str(spec)
    if not text.startswith("s3://"):
        return local_location(Path(text))
    parts = urlsplit(text)
    if not parts.netloc:
        raise ValueError(f"{text}: an S3 location needs a bucket, as in s3://BUCKET/PREFIX")
    root = posixpath.join(parts.netloc, parts.path.strip("/")).rstrip("/")
    options = dict(parse_qsl(parts.query))
    endpoint = options.get("endpoint_override") or os.environ.get("AWS_ENDPOINT_URL_S3") \
        or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint and "://" not in endpoint:
        endpoint = f"{options.get('scheme', 'https')}://{endpoint}"
    region = options.get("region") or os.environ.get("AWS_REGION") \
        or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    fs = s3_filesystem(endpoint, region)
    try:
        fs.create_dir(parts.netloc)  # a no-op on an existing bucket
    except OSError as e:
        raise StorageUnavailable(f"{text}: cannot open the bucket: {e}") from None
    return Location(fs, root, f"s3://{root}", endpoint, region)


def s3_filesystem(endpoint: str | None, region: str) -> pafs.S3FileSystem:
    """pyarrow's S3 client; credentials come from the standard AWS variables and files."""
    scheme, host = endpoint.split("://", 1) if endpoint else ("https", None)
    return pafs.S3FileSystem(
        endpoint_override=host, scheme=scheme, region=region, allow_bucket_creation=True,
        # Fail within seconds while the store is down: the WAL holds the spans meanwhile, and a
        # query is better answered with a clear error than left hanging.
        connect_timeout=3, request_timeout=20,
        retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=3),
    )


def write_object(loc: Location, path: str, data: bytes) -> None:
    """Write a whole object so that readers see all of it or nothing.

    Local: a temporary dot-file, fsynced, then renamed (and the directory fsynced). S3: one PUT of
    the whole body, which the store publishes atomically when it completes; a failed or interrupted
    upload leaves no object (or, at worst, a truncated one that fails the footer/length checks
    readers make, and that the retry overwrites).
    """
    if loc.is_local:
        _write_local(Path(path), data)
        return
    with loc.fs.open_output_stream(path, metadata={"Content-Type": "application/octet-stream"}) as f:
        f.write(data)


def read_object(loc: Location, path: str) -> bytes:
    with loc.fs.open_input_stream(path) as f:
        return bytes(f.read())


def download(loc: Location, path: str, dest: Path) -> None:
    """Copy the object at ``path`` into the local file ``dest``, streaming (segments are large)."""
    with loc.fs.open_input_stream(path) as src, open(dest, "wb") as out:
        while chunk := src.read(8 << 20):
            out.write(chunk)


def exists(loc: Location, path: str) -> bool:
    return bool(loc.fs.get_file_info(path).type != pafs.FileType.NotFound)


def delete_files(loc: Location, paths: list[str]) -> None:
    """Delete files; those already gone are fine."""
    for path in paths:
        try:
            loc.fs.delete_file(path)
        except FileNotFoundError:
            pass


def list_files(loc: Location, directory: str) -> list[pafs.FileInfo]:
    """Every file under ``directory`` (recursively); empty when it does not exist."""
    selector = pafs.FileSelector(loc.join(directory), recursive=True, allow_not_found=True)
    try:
        return [i for i in loc.fs.get_file_info(selector) if i.type == pafs.FileType.File]
    except OSError as e:
        if loc.is_local:
            raise
        raise StorageUnavailable(f"cannot list {loc.uri}/{directory}: {e}") from None


def _write_local(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        # A write that failed (a full disk) is retried: leave no debris holding the space it needs.
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
    fsync_path(path.parent)


def fsync_path(path: Path) -> None:
    """fsync a file or a directory (a directory, so that a rename or unlink in it is durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
