"""A per-user cap on concurrent tool calls, so one tenant cannot starve the others.

Google work runs on a shared thread pool; a tenant whose assistant fires dozens of calls at
once (a bug, a loop, an abusive caller) would otherwise take every thread and make everybody's
calls wait. Each user gets at most `limit` calls in flight; a call over the cap waits briefly
for a slot and then answers a clear "busy" error, while other users' calls go straight through.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from server import metrics
from tools.errors import CalendarUnavailable


class UserBusy(CalendarUnavailable):
    default_message = (
        "The calendar is handling too many requests at once. Please try again in a moment."
    )


@dataclass
class _Slots:
    semaphore: asyncio.Semaphore
    holders: int = field(default=0)  # calls holding or waiting for a slot


class UserLimiter:
    def __init__(self, limit: int, wait_seconds: float) -> None:
        self.limit = limit
        self.wait_seconds = wait_seconds
        self._users: dict[str, _Slots] = {}

    def in_use(self, key: str) -> int:
        slots = self._users.get(key)
        return 0 if slots is None else slots.holders

    @asynccontextmanager
    async def slot(self, key: str) -> AsyncIterator[None]:
        slots = self._users.get(key)
        if slots is None:
            slots = self._users[key] = _Slots(asyncio.Semaphore(self.limit))
        slots.holders += 1
        try:
            if slots.semaphore.locked():
                started = time.perf_counter()
                try:
                    async with asyncio.timeout(self.wait_seconds):
                        await slots.semaphore.acquire()
                except TimeoutError:
                    raise UserBusy() from None
                finally:
                    metrics.LOCK_WAIT_SECONDS.labels(lock="user_slot").observe(
                        time.perf_counter() - started
                    )
            else:
                await slots.semaphore.acquire()
            try:
                yield
            finally:
                slots.semaphore.release()
        finally:
            slots.holders -= 1
            if slots.holders == 0:  # forget idle users: the map stays as small as the traffic
                self._users.pop(key, None)
