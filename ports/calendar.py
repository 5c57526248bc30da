"""The calendar operations the tools need, in shapes no provider owns.

A provider adapter (Google, Microsoft 365) implements `CalendarProvider` for one user
and translates its own failures, once, into the domain errors of `vapi_calendar.tools.errors`
(the sentences the caller hears). The tools never see a provider's wire format.

All datetimes are aware. Spans are `(start, end)` pairs, start inclusive, end exclusive.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from vapi_calendar.ports.stores import Connection

Span = tuple[datetime, datetime]


@dataclass(frozen=True, slots=True)
class BusyTimes:
    """Busy time across the calendars asked about, in one read.

    `unreadable` names calendars whose busy time the provider could not give, with its reason
    (the provider's own word, e.g. "notFound"). A calendar the provider's answer left out is
    unreadable too: never read as free.
    """

    busy: list[Span]
    unreadable: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Event:
    """A calendar event as the tools see it."""

    id: str
    status: str  # "confirmed" | "tentative" | "cancelled"
    summary: str | None
    # Timed events only; None for all-day events, which the tools never create or move.
    start: datetime | None
    end: datetime | None
    # This project's private tags (see `tools.appointments`): never shown to attendees.
    tags: Mapping[str, str] = field(default_factory=dict)
    attendees: tuple[str, ...] = ()  # email addresses
    meeting_link: str | None = None
    # A video meeting was asked for and is still being created: the link is not known yet.
    meeting_pending: bool = False

    @property
    def cancelled(self) -> bool:
        return self.status == "cancelled"


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to create. `id` is chosen by the caller, so creating it twice is detectable."""

    id: str
    summary: str
    description: str
    start: datetime
    end: datetime
    timezone: str  # IANA name the event is shown in
    attendees: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)
    add_meeting: bool = False  # a video meeting link (Google Meet, Microsoft Teams)


class DuplicateEvent(Exception):
    """An event with the requested id already exists (a retried create)."""


class CalendarProvider(Protocol):
    """One user's calendars. Failures raise `tools.errors.ToolError` subclasses."""

    async def busy(
        self, calendar_ids: Sequence[str], start: datetime, end: datetime, timezone: str
    ) -> BusyTimes:
        """Busy time of every calendar in [start, end), in one request."""
        ...

    async def list_events(
        self,
        calendar_id: str,
        *,
        time_min: datetime,
        time_max: datetime | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> list[Event]:
        """Live events overlapping [time_min, time_max), by start time, carrying all `tags`."""
        ...

    async def get_event(self, calendar_id: str, event_id: str) -> Event:
        """The event, cancelled ones included where the provider keeps them (Google does;
        Microsoft moves a deleted or cancelled meeting to Deleted Items, where it is no longer
        in the calendar); `EventNotFound` when there is none."""
        ...

    async def insert_event(self, calendar_id: str, event: NewEvent, *, send_updates: str) -> Event:
        """Create the event; `DuplicateEvent` when its id exists already. With `add_meeting`,
        the provider waits for the meeting link while the call's budget allows; the event it
        returns may still have `meeting_pending`."""
        ...

    async def move_event(
        self,
        calendar_id: str,
        event_id: str,
        start: datetime,
        end: datetime,
        *,
        timezone: str,
        send_updates: str,
    ) -> Event:
        """Change start and end in one write."""
        ...

    async def delete_event(self, calendar_id: str, event_id: str, *, send_updates: str) -> None:
        """Delete (attendees are told); `EventGone` when it was deleted meanwhile."""
        ...

    async def timezone(self) -> str:
        """The IANA time zone of the user's calendar."""
        ...


class TokenSource(Protocol):
    """Where a provider adapter gets the user's access token."""

    async def access_token(self) -> str: ...

    async def rejected(self, token: str) -> str:
        """`token` was refused by the API: a newer one to try once more, or
        `ReconnectRequired` when even a newer one was refused (the grant is unusable)."""
        ...


class CalendarClient(Protocol):
    """A provider's calendar API for any user."""

    def for_user(self, tokens: TokenSource) -> CalendarProvider: ...


class CalendarAccess(Protocol):
    """Opens a connected user's calendar (fresh credentials included)."""

    async def open(self, user_id: str, stored: Connection | None) -> CalendarProvider:
        """`stored` is the user's connection as just read from the store (None: none).
        Raises `CalendarNotConnected` or `ReconnectRequired` when there is nothing to open."""
        ...
