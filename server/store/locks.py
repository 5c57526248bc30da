"""Leases as an async context manager: a lock that frees itself if its holder dies."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from server.store.base import Store

_POLL_SECONDS = 0.02


class LeaseTimeout(Exception):
    """The lease stayed taken for longer than the caller was willing to wait."""


@asynccontextmanager
async def hold_lease(
    store: Store, name: str, *, ttl_seconds: float, wait_seconds: float
) -> AsyncIterator[None]:
    holder = uuid.uuid4().hex
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    while not await store.acquire_lease(name, holder, ttl_seconds):
        if loop.time() >= deadline:
            raise LeaseTimeout(name)
        await asyncio.sleep(_POLL_SECONDS)
    try:
        yield
    finally:
        # Shielded so a cancelled caller still frees the lock instead of waiting out the TTL.
        await asyncio.shield(store.release_lease(name, holder))
