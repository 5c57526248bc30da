"""Every Microsoft request on the event loop: one aiohttp connection pool per process.

Graph is plain JSON over HTTPS and the token endpoint plain form posts; neither needs a client
library (see README, *Dependencies and why*: msgraph-sdk and msal), so aiohttp — already the
transport of the Google calendar requests — sends them without a thread per request.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from yarl import URL


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: dict[str, Any]  # the JSON object answered ({} when none, or not an object)
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names


class MicrosoftHttp:
    def __init__(self, *, max_connections: int, timeout_seconds: float) -> None:
        self._max_connections = max_connections
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        # Created on first use, inside the running event loop it belongs to.
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._max_connections, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        return self._session

    async def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        json_body: Any = None,
        form: Mapping[str, str] | None = None,
    ) -> Reply:
        """One request; transport failures (aiohttp.ClientError, OSError, TimeoutError) raise.

        `url` is sent exactly as given: its query is already percent-encoded (ours by
        `graph_url`, Graph's own `@odata.nextLink` as Graph wrote it)."""
        async with self._open().request(
            method,
            URL(url, encoded=True),
            headers=dict(headers or {}),
            json=json_body,
            data=dict(form) if form is not None else None,
        ) as response:
            content = await response.read()
            received = {k.lower(): v for k, v in response.headers.items()}
            status = response.status
        try:
            body = json.loads(content) if content else {}
        except ValueError:
            body = {}
        return Reply(status, body if isinstance(body, dict) else {}, received)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
