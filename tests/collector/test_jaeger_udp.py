from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

import pyarrow as pa

from spanlake.collector.formats.thrift import MessageType, TType
from spanlake.collector.jaeger_udp import AgentProtocol, start_agent_udp
from spanlake.storage.api import SpanWriter
from tests.collector.formats.thrift_write import write_binary_message, write_compact_message
from tests.collector.jaeger_support import ListWriter, OverloadedWriter
from tests.jaeger_model import thrift_batch
from tests.paths import FIXTURES

BATCH = json.loads((FIXTURES / "jaeger" / "thrift-jaeger-to-domain" / "thrift_batch_02.json").read_text())
Protocol = Literal["compact", "binary"]


def packet(protocol: Protocol) -> bytes:
    write = write_compact_message if protocol == "compact" else write_binary_message
    return write("emitBatch", MessageType.ONEWAY, 0, {1: (TType.STRUCT, thrift_batch(BATCH))})


async def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


def run(protocol: Protocol, writer: SpanWriter, packets: list[bytes],
        until: Callable[[AgentProtocol], bool], **options: int) -> AgentProtocol:
    """Start a listener on a free loopback port, send ``packets``, wait for ``until``."""

    async def main() -> AgentProtocol:
        with ThreadPoolExecutor(max_workers=1) as executor:
            transport = await start_agent_udp("127.0.0.1", 0, protocol, writer, executor, **options)
            agent = transport.get_protocol()
            assert isinstance(agent, AgentProtocol)
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
                for p in packets:
                    sender.sendto(p, transport.get_extra_info("sockname"))
            try:
                await wait_for(lambda: until(agent))
            finally:
                transport.close()
            return agent

    return asyncio.run(main())


def test_compact_emit_batch_is_written() -> None:
    writer = ListWriter()
    agent = run("compact", writer, [packet("compact")], lambda a: a.counters.spans == 2)
    assert [r["service_name"] for r in writer.rows()] == ["api", "api"]
    assert agent.counters.packets == 1 and agent.counters.malformed == 0


def test_binary_emit_batch_is_written() -> None:
    writer = ListWriter()
    run("binary", writer, [packet("binary")], lambda a: a.counters.spans == 2)
    assert len(writer.rows()) == 2


def test_malformed_packets_are_counted_and_the_listener_keeps_serving() -> None:
    writer = ListWriter()
    good = packet("compact")
    bad = [b"\x00garbage", good[:-5], packet("binary"), b""]  # binary bytes on the compact port too
    agent = run("compact", writer, [*bad, good], lambda a: a.counters.packets == 5 and a.counters.spans == 2)
    assert agent.counters.malformed == 4
    assert len(writer.tables) == 1  # only the good packet reached the store


def test_store_overload_is_counted_not_raised() -> None:
    agent = run("compact", OverloadedWriter(), [packet("compact")], lambda a: a.counters.write_failures == 1)
    assert agent.counters.spans == 0


class BlockingWriter:
    def __init__(self) -> None:
        self.release = threading.Event()
        self.tables: list[pa.Table] = []

    def write(self, spans: pa.Table) -> None:
        self.release.wait(5)
        self.tables.append(spans)


def test_packets_beyond_max_pending_are_dropped_not_queued() -> None:
    writer = BlockingWriter()

    def three_seen(agent: AgentProtocol) -> bool:
        if agent.counters.packets == 3:
            writer.release.set()
        return agent.counters.spans == 2

    agent = run("compact", writer, [packet("compact")] * 3, three_seen, max_pending=1)
    assert agent.counters.dropped == 2
    assert len(writer.tables) == 1
