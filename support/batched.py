"""Lookups that arrive while the store is busy answering others go to it together.

Nothing is cached and nothing can be stale: every lookup is answered by a read that starts
after it was asked. A lookup made while none is in flight is sent at once, alone, so a lone
caller waits for exactly one read; lookups made while one is in flight are sent together the
moment it finishes (up to `max_batch` keys). A database driver's worker thread would serve
them one by one in the same order anyway; together they cost one hand-off to that thread and
back instead of one each, which under load (callers arrive in bursts) is most of what an
indexed read costs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Executor
from concurrent.futures import Future as ThreadFuture
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LookupsClosed(RuntimeError):
    """The executor reads were sent to is shut down (its owner was closed)."""


class BatchedLookup(Generic[K, V]):
    """`get(key)` answered by `fetch_many(keys)` run on `executor`: a mapping of the keys found
    to their values (blocking; one thread, so one read at a time).

    The same key asked for twice in one read is fetched once. A failed read fails every lookup
    it carried; a lookup whose caller stopped waiting just goes unanswered.
    """

    def __init__(
        self,
        fetch_many: Callable[[Sequence[K]], dict[K, V]],
        executor: Executor,
        *,
        max_batch: int = 64,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._fetch_many = fetch_many
        self._executor = executor
        self._max_batch = max_batch
        self._waiting: dict[K, list[asyncio.Future[V | None]]] = {}
        self._in_flight = False

    async def get(self, key: K) -> V | None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[V | None] = loop.create_future()
        self._waiting.setdefault(key, []).append(future)
        if not self._in_flight:
            self._send(loop)
        return await future

    def _send(self, loop: asyncio.AbstractEventLoop) -> None:
        keys = list(self._waiting)[: self._max_batch]
        batch = {key: self._waiting.pop(key) for key in keys}
        self._in_flight = True
        try:
            read = self._executor.submit(self._fetch_many, keys)
        except RuntimeError:  # the executor is shut down: its owner was closed meanwhile
            self._in_flight = False
            _fail(batch, LookupsClosed("lookups are closed"))
            return
        read.add_done_callback(lambda done: _call_soon(loop, self._done, loop, batch, done))

    def _done(
        self,
        loop: asyncio.AbstractEventLoop,
        batch: dict[K, list[asyncio.Future[V | None]]],
        read: ThreadFuture[dict[K, V]],
    ) -> None:
        self._in_flight = False
        try:
            found = read.result()
        except BaseException as exc:
            _fail(batch, exc)
        else:
            for key, futures in batch.items():
                value = found.get(key)
                for future in futures:
                    if not future.done():
                        future.set_result(value)
        while self._waiting and not self._in_flight:
            self._send(loop)


def _fail(batch: dict[K, list[asyncio.Future[V | None]]], exc: BaseException) -> None:
    for futures in batch.values():
        for future in futures:
            if not future.done():
                future.set_exception(exc)


def _call_soon(
    loop: asyncio.AbstractEventLoop, callback: Callable[..., None], *args: object
) -> None:
    # Runs on the executor's thread. A loop closed meanwhile has no one left to answer.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(callback, *args)
