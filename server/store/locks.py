"""Leases as an async context manager: a lock that frees itself if its holder dies.

Waiters in this process queue on an in-process lock first (FIFO, woken the moment the holder
releases), and only the head of that queue polls the store lease, which is what excludes other
processes. Without the local queue every waiter polls the store and the order is luck: under a
burst of bookings for one calendar a waiter could lose the race for seconds.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from server import metrics
from server.store.base import Store

_POLL_SECONDS = 0.02

# (event loop, lease name) -> [lock, number of coroutines holding or waiting for it]
_local: dict[tuple[asyncio.AbstractEventLoop, str], list] = {}


class LeaseTimeout(Exception):
    """The lease stayed taken for longer than the caller was willing to wait."""


@asynccontextmanager
async def _local_turn(name: str, wait_seconds: float) -> AsyncIterator[None]:
    key = (asyncio.get_running_loop(), name)
    entry = _local.setdefault(key, [asyncio.Lock(), 0])
    entry[1] += 1
    try:
        try:
            async with asyncio.timeout(max(0.0, wait_seconds)):
                await entry[0].acquire()
        except TimeoutError:
            raise LeaseTimeout(name) from None
        try:
            yield
        finally:
            entry[0].release()
    finally:
        entry[1] -= 1
        if entry[1] == 0:
            _local.pop(key, None)


@asynccontextmanager
async def hold_lease(
    store: Store, name: str, *, ttl_seconds: float, wait_seconds: float
) -> AsyncIterator[None]:
    holder = uuid.uuid4().hex
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    deadline = loop.time() + wait_seconds
    async with _local_turn(name, wait_seconds):
        while not await store.acquire_lease(name, holder, ttl_seconds):
            if loop.time() >= deadline:
                raise LeaseTimeout(name)
            await asyncio.sleep(_POLL_SECONDS)
        metrics.LOCK_WAIT_SECONDS.labels(lock=name.partition(":")[0]).observe(
            time.perf_counter() - started
        )
        try:
            yield
        finally:
            # Shielded so a cancelled caller still frees the lock instead of waiting out the TTL.
            await asyncio.shield(store.release_lease(name, holder))
