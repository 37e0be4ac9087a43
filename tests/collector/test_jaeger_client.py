"""The real ``jaeger-client`` Python library against our Jaeger transports.

jaeger-client reports over UDP compact only, so the HTTP path is exercised the way Jaeger's HTTP
senders work: jaeger-client's own Thrift Batch of real finished spans, posted with Apache Thrift's
``THttpClient`` and ``TBinaryProtocol`` to a live server. Remote sampling is polled by the library's
``RemoteControlledSampler`` from a live sampling server.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI
from jaeger_client import Config, Tracer
from jaeger_client import thrift as jaeger_thrift
from jaeger_client.reporter import InMemoryReporter
from jaeger_client.sampler import ConstSampler, ProbabilisticSampler
from thrift.protocol import TBinaryProtocol
from thrift.transport import THttpClient

from spanlake.collector.jaeger_http import make_app
from spanlake.collector.jaeger_udp import start_agent_udp
from spanlake.collector.sampling import SamplingStrategies, make_sampling_app
from spanlake.storage.attributes import attr_value
from tests.collector.jaeger_support import ListWriter
from tests.server import free_port


def attributes(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {a["key"]: attr_value(a) for a in items}


def make_spans(tracer: Tracer) -> None:
    with tracer.start_span("parent") as parent:
        parent.set_tag("answer", 42)
        parent.log_kv({"event": "cache-miss", "key": "user:1"})
        with tracer.start_span("child", child_of=parent) as child:
            child.set_tag("error", True)
            child.set_tag("span.kind", "client")


def check_reported(rows: list[dict[str, Any]], service: str) -> None:
    by_name = {r["name"]: r for r in rows}
    parent, child = by_name["parent"], by_name["child"]
    assert child["trace_id"] == parent["trace_id"]
    assert child["parent_span_id"] == parent["span_id"] and parent["parent_span_id"] is None
    assert attributes(parent["span_attributes"])["answer"] == 42
    (event,) = parent["events"]
    assert event["name"] == "cache-miss" and attributes(event["attributes"]) == {"key": "user:1"}
    assert (child["kind"], child["status_code"]) == (3, 2)  # client, error
    resource = attributes(parent["resource_attributes"])
    assert resource["service.name"] == service
    assert resource["opencensus.exporterversion"].startswith("Jaeger-Python-")
    assert "host.name" in resource and "hostname" not in resource


def report_over_udp(port: int) -> None:
    # jaeger-client's futures need an asyncio loop object in the calling thread.
    asyncio.set_event_loop(asyncio.new_event_loop())
    config = Config(config={"sampler": {"type": "const", "param": 1}, "logging": False,
                            "local_agent": {"reporting_host": "127.0.0.1", "reporting_port": port}},
                    service_name="udp-client", validate=True)
    tracer = config.new_tracer()
    make_spans(tracer)
    tracer.close()  # flushes the reporter queue to the socket


def test_jaeger_client_reports_over_udp_compact() -> None:
    writer = ListWriter()

    async def main() -> None:
        with ThreadPoolExecutor(max_workers=1) as executor:
            transport = await start_agent_udp("127.0.0.1", 0, "compact", writer, executor)
            try:
                port = transport.get_extra_info("sockname")[1]
                await asyncio.get_running_loop().run_in_executor(None, report_over_udp, port)
                async with asyncio.timeout(5):
                    while len(writer.rows()) < 2:
                        await asyncio.sleep(0.01)
            finally:
                transport.close()

    asyncio.run(main())
    check_reported(writer.rows(), "udp-client")


@contextmanager
def live(app: FastAPI) -> Iterator[int]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait(lambda: server.started)
        yield port
    finally:
        server.should_exit = True
        thread.join(5)


def wait(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_jaeger_client_batch_over_http_thrift() -> None:
    reporter = InMemoryReporter()
    tracer = Tracer("http-client", reporter, ConstSampler(True), tags={"hostname": "box-1"})
    make_spans(tracer)
    batch = jaeger_thrift.make_jaeger_batch(
        spans=reporter.get_spans(),
        process=jaeger_thrift.make_process(service_name="http-client", tags=tracer.tags, max_length=1024))
    writer = ListWriter()
    with live(make_app(writer, SamplingStrategies())) as port:
        http = THttpClient.THttpClient(f"http://127.0.0.1:{port}/api/traces")
        batch.write(TBinaryProtocol.TBinaryProtocol(http))
        http.flush()
        assert http.code == 202
    check_reported(writer.rows(), "http-client")
    assert attributes(writer.rows()[0]["resource_attributes"])["host.name"] == "box-1"


def test_jaeger_client_remote_sampler_takes_the_served_strategy() -> None:
    strategies = SamplingStrategies.from_dict(
        {"service_strategies": [{"service": "sampled-client", "type": "probabilistic", "param": 0.25}]})
    with live(make_sampling_app(strategies)) as port:
        asyncio.set_event_loop(asyncio.new_event_loop())
        config = Config(config={"logging": False, "sampling_refresh_interval": 0.05,
                                "local_agent": {"sampling_port": port}},
                        service_name="sampled-client", validate=True)
        tracer = config.new_tracer()
        try:
            remote = tracer.sampler
            wait(lambda: isinstance(remote.sampler, ProbabilisticSampler) and remote.sampler.rate == 0.25)
        finally:
            tracer.close()
            asyncio.set_event_loop(None)
