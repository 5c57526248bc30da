"""Leases as an async context manager: a lock that frees itself if its holder dies.

Waiters in this process queue in-process first (FIFO, woken the moment the holder releases), and
only the head of that queue polls the store lease, which is what excludes other processes.
Without the local queue every waiter polls the store and the order is luck: under a burst of
bookings for one calendar a waiter could lose the race for seconds.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from vapi_calendar.ports.locks import LockTimeout
from vapi_calendar.ports.stores import LeaseStore
from vapi_calendar.support.keyed import KeyedSemaphore, WaitTimeout
from vapi_calendar.support.metrics import Metrics

POLL_SECONDS = 0.02


class Leases:
    """Named store leases for one app; implements `ports.locks.Locks`."""

    def __init__(
        self,
        store: LeaseStore,
        *,
        ttl_seconds: float,
        metrics: Metrics,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self._store = store
        self._ttl = ttl_seconds
        self._metrics = metrics
        self._poll = poll_seconds
        self._local = KeyedSemaphore(1)

    @asynccontextmanager
    async def hold(
        self,
        name: str,
        *,
        wait_seconds: float,
        ttl_seconds: float | None = None,
        owner: str | None = None,
    ) -> AsyncIterator[None]:
        """Hold lease `name` for the body; `LockTimeout` after `wait_seconds`.

        The lease expires `ttl_seconds` (default: this app's) after it was taken, so a holder
        that dies mid-body blocks others for at most that long.
        """
        holder = uuid.uuid4().hex
        ttl = self._ttl if ttl_seconds is None else ttl_seconds
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        deadline = loop.time() + wait_seconds
        try:
            async with self._local.hold(name, wait_seconds=wait_seconds):
                while not await self._store.acquire_lease(name, holder, ttl, owner=owner):
                    if loop.time() >= deadline:
                        raise LockTimeout(name)
                    await asyncio.sleep(self._poll)
                self._metrics.lock_wait_seconds.labels(lock=name.partition(":")[0]).observe(
                    time.perf_counter() - started
                )
                try:
                    yield
                finally:
                    # Shielded so a cancelled holder still frees the lock instead of leaving it
                    # to the TTL.
                    await asyncio.shield(self._store.release_lease(name, holder))
        except WaitTimeout:
            raise LockTimeout(name) from None
