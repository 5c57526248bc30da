"""Telling the integrator about a user's calendar connection."""

from __future__ import annotations

from typing import Literal, Protocol

ConnectionEvent = Literal["connected", "account_changed", "needs_reconnect", "disconnected"]


class ConnectionEvents(Protocol):
    def publish(self, event: ConnectionEvent, user_id: str, *, email: str | None) -> None:
        """Best effort and in the background: never delays or fails the caller."""
        ...
