"""Calendar API requests on the event loop: built by google-api-python-client, sent by aiohttp.

google-api-python-client is synchronous; running it on worker threads cost a thread hand-off
and `http.client` parsing per request (most of the server's CPU in the benchmark profile). Here
the client library still builds every request (URL, query, body, headers: its discovery
document stays the authority for what a request looks like), aiohttp sends it on a kept-alive
connection without leaving the event loop, and the library's own response model (`postproc`)
reads the answer, so exactly the same `HttpError`s come out for `errors.py` to translate.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import httplib2
from googleapiclient.http import HttpRequest

# Headers aiohttp computes itself from the body it sends.
_OWN_HEADERS = frozenset({"content-length", "host"})


class GoogleHttp:
    """One connection pool for every Calendar request of this process."""

    def __init__(self, *, max_connections: int, timeout_seconds: float) -> None:
        self._max_connections = max_connections
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        # Created on first use, inside the running event loop it belongs to.
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._max_connections, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=self._timeout, auto_decompress=True
            )
        return self._session

    async def send(self, request: HttpRequest, token: str) -> Any:
        """Send `request` with the user's bearer token; its parsed answer, or `HttpError`."""
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _OWN_HEADERS}
        headers["authorization"] = f"Bearer {token}"
        async with self._open().request(
            request.method, request.uri, data=request.body, headers=headers
        ) as response:
            content = await response.read()
            status, reason = response.status, response.reason or ""
            received = {k.lower(): v for k, v in response.headers.items()}
        # The library's response model: JSON on 2xx, `HttpError` (with Google's error body)
        # otherwise — the very exceptions the synchronous client raises.
        answer = httplib2.Response({**received, "status": str(status)})
        answer.reason = reason
        return request.postproc(answer, content)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
