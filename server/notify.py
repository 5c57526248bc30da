"""Optional signed notifications to the integrator about a user's calendar connection.

POST {CONNECTION_WEBHOOK_URL} with JSON ``{"event", "userId", "email", "at"}`` where event is
``connected`` | ``needs_reconnect`` | ``disconnected`` | ``calendar_unreadable`` |
``calendar_readable`` (these two add ``calendarId`` and ``reason``). Headers:
``X-Vapi-Calendar-Timestamp`` (unix seconds) and ``X-Vapi-Calendar-Signature`` =
``sha256=`` + hex HMAC-SHA256(CONNECTION_WEBHOOK_SECRET, ``"{timestamp}.{raw body}"``).
Delivery is best effort, in the background, with a few retries; it never delays a tool call.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime

import httpx

from vapi_calendar.ports.events import ConnectionEvent
from vapi_calendar.support.signing import timestamped_signature

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Vapi-Calendar-Signature"
TIMESTAMP_HEADER = "X-Vapi-Calendar-Timestamp"
_ATTEMPTS = 3
_SHUTDOWN_GRACE_SECONDS = 5.0


def sign(secret: str, timestamp: str, body: bytes) -> str:
    return "sha256=" + timestamped_signature(secret.encode(), timestamp, body)


class ConnectionNotifier:
    """Implements `ports.events.ConnectionEvents` with signed HTTP POSTs."""

    def __init__(self, url: str | None, secret: str | None) -> None:
        self._url = url
        self._secret = secret or ""
        self._client: httpx.AsyncClient | None = None
        self._opening = asyncio.Lock()
        self._pending: set[asyncio.Task[None]] = set()

    def publish(
        self,
        event: ConnectionEvent,
        user_id: str,
        *,
        email: str | None,
        detail: Mapping[str, str] | None = None,
    ) -> None:
        if not self._url:
            return
        fields = {
            **(detail or {}),
            "event": event,
            "userId": user_id,
            "email": email,
            "at": datetime.now(UTC).isoformat(),
        }
        body = json.dumps(fields).encode()
        task = asyncio.get_running_loop().create_task(self._deliver(body, event))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _deliver(self, body: bytes, event: str) -> None:
        assert self._url is not None
        client = await self._opened_client()
        for attempt in range(_ATTEMPTS):
            timestamp = str(int(time.time()))
            headers = {
                "content-type": "application/json",
                TIMESTAMP_HEADER: timestamp,
                SIGNATURE_HEADER: sign(self._secret, timestamp, body),
            }
            try:
                response = await client.post(self._url, content=body, headers=headers)
                if response.status_code < 500:
                    if response.is_error:
                        log.warning(
                            "connection webhook refused", extra={"status": response.status_code}
                        )
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.5 * 4**attempt)
        log.warning("connection webhook undeliverable", extra={"event": event})

    async def _opened_client(self) -> httpx.AsyncClient:
        async with self._opening:
            if self._client is None:
                # Building a client loads the CA bundle (tens of ms): not on the event loop.
                self._client = await asyncio.to_thread(httpx.AsyncClient, timeout=5)
        return self._client

    async def aclose(self) -> None:
        """Give deliveries under way a few seconds to finish at shutdown."""
        if self._pending:
            await asyncio.wait(self._pending, timeout=_SHUTDOWN_GRACE_SECONDS)
        if self._client is not None:
            await self._client.aclose()
