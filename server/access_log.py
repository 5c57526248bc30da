"""Access log that never records credentials.

uvicorn's own access log prints the full URL, which here would include connect-link tokens
(`/connect/<token>`) and OAuth `code`/`state` query parameters. This one logs the method, the
path with token segments replaced, never the query string, the status and the duration: one
line per request, which also carries what the layers below added to it
(`support.log_line`: a webhook's line is the tool pipeline's "tool calls answered").

Every request gets a request id: the caller's `x-request-id` when it is a sane token (so a
proxy's id carries through), else a fresh one. It is echoed in the response's `x-request-id`
and set in `logs.request_id`, so every log line written while serving the request
carries it.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import secrets
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vapi_calendar.server.logs import request_id
from vapi_calendar.support.log_line import request_line

log = logging.getLogger("vapi_calendar.access")

_SECRET_SEGMENTS = re.compile(r"^/connect/[^/]+")
# A fresh request id is this process's random prefix and a count: unique across processes and
# restarts like a uuid4, without reading the system's randomness on every request. A process
# forked after import (a pre-forking server's workers) draws a prefix of its own.
_ID_PREFIX = secrets.token_hex(8)
_ID_COUNT = itertools.count(1)


def _new_id_prefix() -> None:
    global _ID_PREFIX, _ID_COUNT
    _ID_PREFIX, _ID_COUNT = secrets.token_hex(8), itertools.count(1)


os.register_at_fork(after_in_child=_new_id_prefix)
_SANE_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")


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
        rid = incoming_request_id(scope) or f"{_ID_PREFIX}{next(_ID_COUNT):016x}"
        token = request_id.set(rid)

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            with request_line() as added:
                await self.app(scope, receive, send_and_record)
        finally:
            path = redact(scope["path"])
            ms = round((time.perf_counter() - started) * 1000, 1)
            fields = {"method": scope["method"], "path": path, "status": status, "ms": ms}
            if (named := added.pop("msg", None)) is not None:
                # A layer below named this request's line (the tool calls' outcome): one line
                # carries both, and the request's own `ms` covers the calls'.
                added.pop("ms", None)
                log.info("%s", named, extra={**added, **fields})
            else:
                log.info("%s %s %d %.1fms", scope["method"], path, status, ms, extra=fields)
            request_id.reset(token)


def incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            return value.decode() if _SANE_REQUEST_ID.fullmatch(value) else None
    return None
