"""``spanlake compact`` takes the same compactor lease as the background compactors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from spanlake.storage.lease import LocalLease
from spanlake.storage.location import local_location


def _compact(tmp_path: Path, store: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "spanlake", "compact", "--data-dir", str(tmp_path / "wal"),
                           "--storage", str(store)], capture_output=True, text=True, timeout=60)


def test_compact_refuses_while_another_process_holds_the_lease(tmp_path: Path) -> None:
    store = tmp_path / "store"
    holder = LocalLease(local_location(store), "a-serving-compactor")
    assert holder.try_acquire()
    refused = _compact(tmp_path, store)
    assert refused.returncode == 1
    assert "another process holds the compactor lease" in refused.stderr
    holder.release()
    done = _compact(tmp_path, store)
    assert done.returncode == 0, done.stderr
    assert "merged 0 segments into 0" in done.stdout
