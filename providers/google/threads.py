"""The one place synchronous Google traffic runs: a thread pool sized on purpose.

google-api-python-client and google-auth are synchronous and httplib2 connections are not
thread-safe, so each worker thread owns one kept-alive `httplib2.Http` (and, through
`thread_local`, whatever else is expensive to build, such as the Calendar service). Work is
handed over with `run`, so the event loop only ever awaits.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import http.client
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import httplib2
from google.auth.exceptions import TransportError

from vapi_calendar.support.metrics import Metrics

T = TypeVar("T")

_STALE_CONNECTION = (
    BrokenPipeError,
    ConnectionResetError,  # includes http.client.RemoteDisconnected
    ConnectionAbortedError,
    http.client.BadStatusLine,
)


class GoogleThreads:
    def __init__(self, *, max_workers: int, timeout_seconds: float, metrics: Metrics) -> None:
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="google")
        self._timeout = timeout_seconds
        self._local = threading.local()
        self._busy = metrics.google_threads_busy

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
        # The caller's context (request id for log lines) goes along into the worker.
        context = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, context.run, self._counted, fn
        )

    def _counted(self, fn: Callable[[], T]) -> T:
        self._busy.inc()
        try:
            reused = self._has_connections()
            try:
                return fn()
            except _STALE_CONNECTION:
                # A kept-alive connection the server closed while it sat idle fails at once
                # (broken pipe, reset, empty status line) before the server saw the request.
                # httplib2 does not reconnect for POST, so: a fresh connection, once, here.
                self._drop_connections()
                if not reused:
                    raise
                return fn()
        except (OSError, httplib2.HttpLib2Error, http.client.HTTPException, TransportError):
            # Never hand a possibly broken connection to the next request on this thread.
            self._drop_connections()
            raise
        finally:
            self._busy.dec()

    def _has_connections(self) -> bool:
        http = getattr(self._local, "http", None)
        return bool(http is not None and http.connections)

    def _drop_connections(self) -> None:
        http = getattr(self._local, "http", None)
        if http is None:
            return
        for connection in list(http.connections.values()):
            with contextlib.suppress(Exception):
                connection.close()
        http.connections.clear()

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
