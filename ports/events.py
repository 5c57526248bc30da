"""Telling the integrator about a user's calendar connection."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, Protocol

ConnectionEvent = Literal[
    "connected",
    "account_changed",  # connected to a different Google account (a link that allowed it)
    "needs_reconnect",
    "disconnected",
    # A calendar the user's rules read for busy time cannot be read (detail: calendarId,
    # reason), and when it reads fine again.
    "calendar_unreadable",
    "calendar_readable",
]


class ConnectionEvents(Protocol):
    def publish(
        self,
        event: ConnectionEvent,
        user_id: str,
        *,
        email: str | None,
        detail: Mapping[str, str] | None = None,
    ) -> None:
        """Best effort and in the background: never delays or fails the caller. `detail`
        adds event-specific fields (e.g. calendarId) to the notification."""
        ...
