"""A stand-in for the integrator's CONNECTION_WEBHOOK_URL: collects signed notifications."""

from __future__ import annotations

import hmac
import json
import threading
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from vapi_calendar.server.notify import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign


class Receiver:
    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.arrived = threading.Condition()

    async def endpoint(self, request: Request) -> Response:
        body = await request.body()
        with self.arrived:
            self.received.append((dict(request.headers), body))
            self.arrived.notify_all()
        return Response(status_code=204)

    def wait_for(self, count: int) -> list[dict[str, Any]]:
        with self.arrived:
            arrived = self.arrived.wait_for(lambda: len(self.received) >= count, timeout=10)
            assert arrived, [json.loads(b) for _, b in self.received]
        events = []
        for headers, body in self.received:
            expected = sign("hook-secret", headers[TIMESTAMP_HEADER.lower()], body)
            assert hmac.compare_digest(headers[SIGNATURE_HEADER.lower()], expected)
            events.append(json.loads(body))
        return events
