"""CPU time and resident memory of another process, read from /proc, per phase of a benchmark.

Both engines are measured the same way from outside: chDB runs inside a child process, spanlake inside
``spanlake serve``; a sampler thread polls the process's RSS and the harness names the phase.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of every thread of ``pid`` so far (fields 14 and 15 of /proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat") as handle:
        text = handle.read()
    # The command name (field 2) may hold spaces; the fields after its closing parenthesis do not.
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as handle:
        return int(handle.read().split()[1]) * PAGE_SIZE


@dataclass
class Phase:
    name: str
    started: float
    cpu_start: float
    peak_rss: int = 0
    wall: float = 0.0
    cpu: float = 0.0


@dataclass
class Monitor:
    """Samples ``pid``'s RSS every ``interval`` seconds; ``phase(name)`` starts a new measured phase."""

    pid: int
    interval: float = 0.02
    phases: dict[str, Phase] = field(default_factory=dict)
    _current: Phase | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Monitor:
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def phase(self, name: str) -> None:
        self._close_current()
        self._current = Phase(name, time.perf_counter(), cpu_seconds(self.pid), rss_bytes(self.pid))
        self.phases[name] = self._current

    def stop(self) -> dict[str, Phase]:
        self._close_current()
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return self.phases

    def _close_current(self) -> None:
        current, self._current = self._current, None
        if current is None:
            return
        current.wall = time.perf_counter() - current.started
        try:
            current.cpu = cpu_seconds(self.pid) - current.cpu_start
            current.peak_rss = max(current.peak_rss, rss_bytes(self.pid))
        except (FileNotFoundError, ProcessLookupError):
            pass  # the process ended during the phase: keep what was sampled

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            current = self._current
            try:
                rss = rss_bytes(self.pid)
            except (FileNotFoundError, ProcessLookupError):
                return
            if current is not None:
                current.peak_rss = max(current.peak_rss, rss)
