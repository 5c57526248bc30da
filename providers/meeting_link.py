"""Waiting for an online-meeting link that the provider creates after the event.

Google answers a Meet conference as `pending` and Microsoft may return an online meeting
without its join URL yet. The booking itself is done by then, so the event is re-read a few
times while the call's budget still covers the wait, the read and the answer after it; a
failed re-read only leaves the link unknown.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from vapi_calendar.ports.calendar import Event
from vapi_calendar.support.budget import remaining
from vapi_calendar.tools.errors import ToolError

POLL_DELAYS = (0.2, 0.4, 0.8, 1.2)
POLL_RESERVE_SECONDS = 1.5


async def await_meeting_link(event: Event, read_again: Callable[[], Awaitable[Event]]) -> Event:
    """The event once its meeting link is there, else as last read."""
    for delay in POLL_DELAYS:
        left = remaining()
        if left is not None and left < delay + POLL_RESERVE_SECONDS:
            break
        await asyncio.sleep(delay)
        try:
            latest = await read_again()
        except ToolError:
            break
        if not latest.meeting_pending:
            return latest
        event = latest
    return event
