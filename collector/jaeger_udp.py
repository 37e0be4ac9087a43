"""Jaeger agent UDP (6831 compact, 6832 binary): ``Agent.emitBatch`` oneway Thrift messages.

Each datagram is one message. Decoding and the blocking ``writer.write`` run on the given executor,
never on the event loop. UDP has no way to push back, so, like Jaeger's agent with its bounded queue,
packets that arrive while ``max_pending`` are still being processed are dropped and counted. A
malformed packet is counted and logged (rate-limited) and the listener carries on.

Counters: ``transport.get_protocol().counters`` (an ``AgentCounters``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Literal

import pyarrow as pa

from spanlake.collector.formats.errors import FormatError
from spanlake.collector.formats.jaeger_thrift import decode_agent_binary, decode_agent_compact
from spanlake.storage.api import SpanWriter, StoreOverloaded

log = logging.getLogger(__name__)

DEFAULT_MAX_PENDING = 1000  # packets queued for the executor; Jaeger's agent queue is 1000 too
_LOG_INTERVAL_S = 10.0  # at most one malformed-packet log line per interval: a flood must not flood logs


@dataclass
class AgentCounters:
    packets: int = 0  # datagrams received
    spans: int = 0  # spans written
    malformed: int = 0  # datagrams that did not decode
    dropped: int = 0  # datagrams dropped because max_pending were in flight
    write_failures: int = 0  # datagrams whose spans the store refused (overload or error)


class AgentProtocol(asyncio.DatagramProtocol):
    def __init__(self, decode: Callable[[bytes], pa.Table], writer: SpanWriter, executor: Executor,
                 max_pending: int, name: str) -> None:
        self.decode = decode
        self.writer = writer
        self.executor = executor
        self.max_pending = max_pending
        self.name = name
        self.counters = AgentCounters()
        self._lock = threading.Lock()
        self._pending = 0
        self._last_log = 0.0

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        with self._lock:
            self.counters.packets += 1
            if self._pending >= self.max_pending:
                self.counters.dropped += 1
                return
            self._pending += 1
        try:
            self.executor.submit(self._handle, data, addr)
        except RuntimeError:  # executor shut down: the server is stopping
            with self._lock:
                self._pending -= 1
                self.counters.dropped += 1

    def _handle(self, data: bytes, addr: tuple[str | object, int]) -> None:
        try:
            self._process(data, addr)
        finally:
            with self._lock:
                self._pending -= 1

    def _process(self, data: bytes, addr: tuple[str | object, int]) -> None:
        try:
            spans = self.decode(data)
        except FormatError as exc:
            with self._lock:
                self.counters.malformed += 1
            self._log(f"jaeger agent {self.name}: malformed packet of {len(data)} bytes "
                      f"from {addr[0]}: {exc}")
            return
        try:
            if spans.num_rows:
                self.writer.write(spans)
        except StoreOverloaded:
            with self._lock:
                self.counters.write_failures += 1
            self._log(f"jaeger agent {self.name}: store overloaded, dropped {spans.num_rows} spans")
            return
        except Exception:  # a UDP sender cannot be told; count it, log it, keep listening
            with self._lock:
                self.counters.write_failures += 1
            log.exception("jaeger agent %s: writing %d spans failed", self.name, spans.num_rows)
            return
        with self._lock:
            self.counters.spans += spans.num_rows

    def _log(self, message: str) -> None:
        now = time.monotonic()
        if now - self._last_log >= _LOG_INTERVAL_S:
            self._last_log = now
            log.warning("%s", message)


async def start_agent_udp(
    host: str,
    port: int,
    protocol: Literal["compact", "binary"],
    writer: SpanWriter,
    executor: Executor,
    *,
    max_pending: int = DEFAULT_MAX_PENDING,
    binary_as_base64: bool = True,
) -> asyncio.DatagramTransport:
    """Listen for ``Agent.emitBatch`` datagrams on ``host:port``; close the returned transport to stop.

    ``binary_as_base64``: see ``jaeger_thrift.batch_to_spans``."""
    decode_agent = decode_agent_compact if protocol == "compact" else decode_agent_binary
    decode = functools.partial(decode_agent, binary_as_base64=binary_as_base64)
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: AgentProtocol(decode, writer, executor, max_pending, protocol),
        local_addr=(host, port),
    )
    return transport
