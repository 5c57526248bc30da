"""Which of a user's calendars cannot be read, kept on their connection for the operator.

Google answers freeBusy with HTTP 200 even when it could not compute a calendar: the entry
carries `errors` (e.g. notFound for a calendar no longer shared, internalError), and the
provider reports it in `BusyTimes.unreadable`. The domain decides what the caller hears (an
unreadable booking calendar refuses; a busy-only one makes the answer "may be incomplete"),
but the owner and the operator must hear about it too, and the domain does no I/O. So the
calendar each tool call opens is wrapped (`WatchedCalendar`): every freeBusy answer is compared
with the warnings stored on the connection, and a change is written back (admin API
`google.warnings`), announced (`calendar_unreadable` / `calendar_readable` connection events)
and logged; every unreadable calendar in an answer is counted (metric).

A warning is kept from the first answer that could not read the calendar (`since`) until an
answer reads it again. Recording is best effort: a failed write never fails the tool call, and
two calls racing may announce one change twice (at least once, never lost for long: the next
answer repeats the comparison).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from vapi_calendar.ports.calendar import BusyTimes, CalendarProvider, Event, NewEvent
from vapi_calendar.ports.events import ConnectionEvents
from vapi_calendar.ports.stores import CalendarWarning, Connection, ConnectionStore, StoreError
from vapi_calendar.support.metrics import Metrics, unreadable_label

log = logging.getLogger(__name__)


class CalendarReadability:
    def __init__(
        self, *, store: ConnectionStore, events: ConnectionEvents, metrics: Metrics
    ) -> None:
        self._store = store
        self._events = events
        self._metrics = metrics

    def watch(self, calendar: CalendarProvider, connection: Connection) -> WatchedCalendar:
        return WatchedCalendar(calendar, self, connection)

    async def observe(
        self,
        connection: Connection,
        known: tuple[CalendarWarning, ...],
        requested: Sequence[str],
        unreadable: Mapping[str, str],
    ) -> tuple[CalendarWarning, ...]:
        """The connection's warnings after one freeBusy answer (`known`: before it)."""
        for reason in unreadable.values():
            self._metrics.unreadable_calendars.labels(reason=unreadable_label(reason)).inc()
        now = datetime.now(UTC)
        current = {w.calendar_id: w for w in known}
        updated = dict(current)
        for calendar_id in requested:
            failure = unreadable.get(calendar_id)
            if failure is None:
                updated.pop(calendar_id, None)
            elif calendar_id not in current or current[calendar_id].reason != failure:
                since = current[calendar_id].since if calendar_id in current else now
                updated[calendar_id] = CalendarWarning(calendar_id, failure, since)
        if updated == current:
            return known
        warnings = tuple(sorted(updated.values(), key=lambda w: w.calendar_id))
        user_id = connection.user_id
        try:
            await self._store.set_calendar_warnings(user_id, warnings)
        except StoreError as exc:
            log.warning("could not record calendar warnings: %s", exc, extra={"user_id": user_id})
            return known
        for calendar_id in sorted(updated.keys() - current.keys()):
            reason = updated[calendar_id].reason
            log.warning(
                "a calendar of the user cannot be read",
                extra={"user_id": user_id, "calendar_id": calendar_id, "reason": reason},
            )
            self._events.publish(
                "calendar_unreadable",
                user_id,
                email=connection.email,
                detail={"calendarId": calendar_id, "reason": reason},
            )
        for calendar_id in sorted(current.keys() - updated.keys()):
            log.info(
                "a calendar of the user can be read again",
                extra={"user_id": user_id, "calendar_id": calendar_id},
            )
            self._events.publish(
                "calendar_readable",
                user_id,
                email=connection.email,
                detail={"calendarId": calendar_id, "reason": current[calendar_id].reason},
            )
        return warnings


class WatchedCalendar:
    """A user's `CalendarProvider` whose freeBusy answers keep the connection's warnings
    current; every other operation passes straight through."""

    def __init__(
        self, inner: CalendarProvider, readability: CalendarReadability, connection: Connection
    ) -> None:
        self._inner = inner
        self._readability = readability
        self._connection = connection
        self._known = connection.warnings

    async def busy(
        self, calendar_ids: Sequence[str], start: datetime, end: datetime, timezone: str
    ) -> BusyTimes:
        times = await self._inner.busy(calendar_ids, start, end, timezone)
        self._known = await self._readability.observe(
            self._connection, self._known, calendar_ids, times.unreadable
        )
        return times

    async def list_events(
        self,
        calendar_id: str,
        *,
        time_min: datetime,
        time_max: datetime | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> list[Event]:
        return await self._inner.list_events(
            calendar_id, time_min=time_min, time_max=time_max, tags=tags
        )

    async def get_event(self, calendar_id: str, event_id: str) -> Event:
        return await self._inner.get_event(calendar_id, event_id)

    async def insert_event(self, calendar_id: str, event: NewEvent, *, send_updates: str) -> Event:
        return await self._inner.insert_event(calendar_id, event, send_updates=send_updates)

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
        return await self._inner.move_event(
            calendar_id, event_id, start, end, timezone=timezone, send_updates=send_updates
        )

    async def delete_event(self, calendar_id: str, event_id: str, *, send_updates: str) -> None:
        await self._inner.delete_event(calendar_id, event_id, send_updates=send_updates)

    async def timezone(self) -> str:
        return await self._inner.timezone()
