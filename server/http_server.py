"""How uvicorn serves the app: limits that apply before any request reaches it.

Authentication happens in the app, so everything before it is a door an unauthenticated client
can lean on. uvicorn's fast httptools protocol (what `uvicorn[standard]` runs) has no limit on
request headers and no deadline for reading a request, so a client could send a 200 MB header or
open thousands of requests it never finishes. This module's protocol, a small subclass, adds
both:

- request headers larger than `MAX_HEADER_BYTES` are answered 431 and the connection closed,
  counted as they arrive, so nothing large is ever buffered;
- each request (headers and body) must arrive within REQUEST_READ_TIMEOUT_SECONDS of its first
  byte (for a new connection: of connecting); otherwise the connection is closed.

`serve` and the test servers build their uvicorn configuration here, so tests exercise exactly
what production runs.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger(__name__)

MAX_HEADER_BYTES = 64 * 1024
YOUNG_GENERATION_THRESHOLD = 20_000  # see AppServer
# uvicorn closes idle keep-alive connections after 5 s by default. A client (Vapi, or a load
# balancer with the usual 60 s idle timeout) that reuses a connection just as the server closes
# it gets a dropped request, so the server keeps idle connections longer than its clients do.
KEEP_ALIVE_SECONDS = 75
_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: text/plain; charset=utf-8\r\nconnection: close\r\ncontent-length: 33\r\n\r\n"
    b"request headers are over 64 KiB\r\n"
)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header size limit and a request read deadline."""

    read_timeout_seconds: float = 15.0
    max_header_bytes: int = MAX_HEADER_BYTES

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._deadline: asyncio.TimerHandle | None = None
        self._in_headers = False
        self._header_bytes = 0
        super().connection_made(transport)
        self._arm()  # the first request must start arriving, and finish, in time too

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._arm()  # a request begins on a kept-alive connection: it gets its own deadline
        super().data_received(data)
        # Counted only while the headers are still incomplete after this chunk, so a body that
        # shares a chunk with the end of the headers never counts against them.
        if self._in_headers:
            self._header_bytes += len(data)
            if self._header_bytes > self.max_header_bytes:
                self._refuse_headers()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_headers = True
        self._header_bytes = 0

    def on_headers_complete(self) -> None:
        self._in_headers = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()  # the request is in; the app takes whatever time its budget allows

    def _arm(self) -> None:
        if self._deadline is None and not self.transport.is_closing():
            self._deadline = self.loop.call_later(self.read_timeout_seconds, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        log.info("closed a connection whose request did not arrive in time")
        self.transport.close()

    def _refuse_headers(self) -> None:
        self._disarm()
        log.info("refused a request with over-large headers")
        self.transport.write(_TOO_LARGE)
        self.transport.close()


def uvicorn_config(app: Any, *, read_timeout_seconds: float, **options: Any) -> uvicorn.Config:
    """The uvicorn configuration every server of this project runs with."""
    protocol = type(
        "GuardedHttpToolsProtocol",
        (GuardedHttpToolsProtocol,),
        {"read_timeout_seconds": read_timeout_seconds},
    )
    return uvicorn.Config(
        app,
        http=protocol,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        **options,
    )


class AppServer(uvicorn.Server):
    """uvicorn's server, with the garbage collector set for a long-running request handler.

    After startup every object alive by then (modules, Google's discovery documents, compiled
    schemas, settings) lives as long as the process: `gc.freeze` moves them out of the
    collector's reach, so a full collection no longer walks them all again. And a tool call
    allocates thousands of short-lived containers: collecting the youngest generation every
    20,000 allocations instead of 700 stops re-walking the objects of the calls in flight.
    Under load these two took the collector from about a tenth of the server's CPU (perf) to
    under one per cent; the garbage it still finds is at most a few megabytes.
    """

    async def startup(self, sockets: list[Any] | None = None) -> None:
        await super().startup(sockets)
        gc.collect()
        gc.freeze()
        gc.set_threshold(YOUNG_GENERATION_THRESHOLD, *gc.get_threshold()[1:])
