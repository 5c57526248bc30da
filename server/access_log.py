"""Access log that never records credentials.

uvicorn's own access log prints the full URL, which here would include connect-link tokens
(`/connect/<token>`) and OAuth `code`/`state` query parameters. This one logs the method, the
path with token segments replaced, never the query string, the status and the duration.
"""

from __future__ import annotations

import logging
import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("vapi_calendar.access")

_SECRET_SEGMENTS = re.compile(r"^/connect/[^/]+")


def redact(path: str) -> str:
    return _SECRET_SEGMENTS.sub("/connect/<token>", path)


class AccessLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            log.info(
                "%s %s %d %.1fms",
                scope["method"],
                redact(scope["path"]),
                status,
                (time.perf_counter() - started) * 1000,
            )
