"""The per-call time budget, visible to everything a tool call awaits.

A tool call is dead air on a phone line and the voice platform gives up after its own timeout,
so every call runs under a deadline. It lives in a context variable: it follows the call into
every coroutine and worker thread it starts, and retries deep down (`remaining()`) can tell
whether another attempt still fits.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_deadline: ContextVar[float | None] = ContextVar("vapi_calendar_deadline", default=None)


@contextmanager
def time_budget(seconds: float) -> Iterator[None]:
    """Everything awaited inside must be done within `seconds` (sets the deadline)."""
    token = _deadline.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


def remaining() -> float | None:
    """Seconds left in the current tool call's budget; None outside a tool call."""
    deadline = _deadline.get()
    return None if deadline is None else deadline - time.monotonic()
