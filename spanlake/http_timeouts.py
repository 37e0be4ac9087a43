"""Header and body read timeouts for every HTTP listener (uvicorn has neither).

Without them a client that sends half a request holds its connection, a file descriptor and, once
the app reads the body, a worker forever: 2,000 half-sent requests were all still open after 30 s
(issue 14). As Go's ``http.Server`` ``ReadHeaderTimeout`` and ``ReadTimeout``: a connection gets
``header_timeout`` seconds to deliver a request's headers (counted from the connection, or from the
end of the previous response), then ``body_timeout`` seconds for the whole body. On expiry it gets a
``408 Request Timeout`` if no response has started, and is closed.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_TIMEOUT_RESPONSE = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain\r\nconnection: close\r\n"
                     b"content-length: 28\r\n\r\nrequest not received in time")


def protocol_class(header_timeout: float, body_timeout: float) -> type[HttpToolsProtocol]:
    """A uvicorn protocol class for ``uvicorn.Config(http=...)`` with these timeouts.

    On httptools (llhttp, in C), not h11 (pure Python): HTTP parsing is on every request's path.
    """

    class TimedProtocol(HttpToolsProtocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._deadline: asyncio.TimerHandle | None = None
            self._seen_cycle: Any = None
            self._arm(header_timeout)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            self._track()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm(header_timeout)  # the next request's headers
                self._track()  # a pipelined request may already be in

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _track(self) -> None:
            cycle = self.cycle
            if cycle is None:
                return
            if cycle is not self._seen_cycle:  # a new request's headers just arrived
                self._seen_cycle = cycle
                self._disarm()
                if cycle.more_body:
                    self._arm(body_timeout)
            elif not cycle.more_body and self._deadline is not None and not cycle.response_complete:
                self._disarm()  # the whole body is in: the app's own time is not limited here

        def _arm(self, seconds: float) -> None:
            self._disarm()
            if seconds > 0:
                self._deadline = self.loop.call_later(seconds, self._expire)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expire(self) -> None:
            self._deadline = None
            if self.transport.is_closing():
                return
            cycle = self.cycle
            if cycle is None or not cycle.response_started:
                self.transport.write(_TIMEOUT_RESPONSE)
            self.transport.close()

    return TimedProtocol
