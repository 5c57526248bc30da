"""The one place synchronous Google traffic runs: a thread pool sized on purpose.

google-api-python-client and google-auth are synchronous and httplib2 connections are not
thread-safe, so each worker thread owns one kept-alive `httplib2.Http` (and, through
`thread_local`, whatever else is expensive to build, such as the Calendar service). Work is
handed over with `run`, so the event loop only ever awaits.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import httplib2

T = TypeVar("T")


class GoogleThreads:
    def __init__(self, *, max_workers: int, timeout_seconds: float) -> None:
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="google")
        self._timeout = timeout_seconds
        self._local = threading.local()

    @property
    def timeout_seconds(self) -> float:
        return self._timeout

    def http(self) -> httplib2.Http:
        """This worker thread's connection (only call from inside `run`)."""
        http = getattr(self._local, "http", None)
        if http is None:
            http = self._local.http = httplib2.Http(timeout=self._timeout)
        return http

    def thread_local(self, name: str, factory: Callable[[], Any]) -> Any:
        """A per-thread singleton, built on first use in each worker."""
        value = getattr(self._local, name, None)
        if value is None:
            value = factory()
            setattr(self._local, name, value)
        return value

    async def run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
