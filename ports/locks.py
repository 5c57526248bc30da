"""Named locks that hold across processes and free themselves if their holder dies."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Protocol


class LockTimeout(Exception):
    """The lock stayed taken for longer than the caller was willing to wait."""


class Locks(Protocol):
    def hold(
        self, name: str, *, wait_seconds: float, owner: str | None = None
    ) -> AbstractAsyncContextManager[None]:
        """Hold the lock `name` for the body; `LockTimeout` after `wait_seconds`. `owner` is the
        user the lock belongs to, if any (deleting the user deletes a lock left behind)."""
        ...
