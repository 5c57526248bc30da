"""The calendar providers this deployment offers, each with its OAuth client and calendar API.

One user has one provider at a time (`Connection.provider`); everything that acts on a user's
grant — refresh, opening the calendar, revoking — picks that provider's clients here. The
composition root (`server/services.py`) decides which providers are configured.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from vapi_calendar.ports.calendar import CalendarClient
from vapi_calendar.ports.oauth import OAuthClient


@dataclass(frozen=True, slots=True)
class Provider:
    name: str  # `ports.stores.GOOGLE` | `ports.stores.MICROSOFT`
    vendor: str  # who people sign in with, e.g. "Microsoft"
    label: str  # what the connect page offers, e.g. "Microsoft 365 / Outlook"
    oauth: OAuthClient
    calendars: CalendarClient

    @property
    def account(self) -> str:
        return f"{self.vendor} account"


class UnknownProvider(Exception):
    """A connection or consent names a provider this deployment does not offer (any more)."""


class Providers:
    def __init__(self, providers: Sequence[Provider]) -> None:
        if not providers:
            raise ValueError("at least one calendar provider must be configured")
        self._by_name = {provider.name: provider for provider in providers}

    def get(self, name: str) -> Provider:
        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownProvider(name) from None

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[Provider]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)
