"""Per-key semaphores that exist only while someone holds or waits for them.

One primitive serves two policies: the per-user cap on concurrent tool calls (a semaphore of N
per user) and the in-process queue in front of a store lease (a FIFO lock per lease name).
asyncio's semaphores wake waiters in arrival order, so a queue is fair and never polls.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Hashable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field


class WaitTimeout(Exception):
    """Every place of the key stayed taken for longer than the caller was willing to wait."""


@dataclass
class _Entry:
    semaphore: asyncio.Semaphore
    users: int = field(default=0)  # coroutines holding or waiting


class KeyedSemaphore:
    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self._entries: dict[Hashable, _Entry] = {}

    @asynccontextmanager
    async def hold(
        self,
        key: Hashable,
        *,
        wait_seconds: float,
        on_contended_wait: Callable[[float], None] | None = None,
    ) -> AsyncIterator[None]:
        """Hold one of `key`'s places for the body; `WaitTimeout` after `wait_seconds`.

        `on_contended_wait(seconds)` is told how long a caller waited, only when it had to wait
        (also when it gave up), so an uncontended hold costs nothing extra.
        """
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry(asyncio.Semaphore(self.limit))
        entry.users += 1
        try:
            if entry.semaphore.locked():
                started = time.perf_counter()
                try:
                    async with asyncio.timeout(max(0.0, wait_seconds)):
                        await entry.semaphore.acquire()
                except TimeoutError:
                    raise WaitTimeout(key) from None
                finally:
                    if on_contended_wait is not None:
                        on_contended_wait(time.perf_counter() - started)
            else:
                await entry.semaphore.acquire()
            try:
                yield
            finally:
                entry.semaphore.release()
        finally:
            entry.users -= 1
            if entry.users == 0:  # forget idle keys: the map stays as small as the traffic
                self._entries.pop(key, None)
