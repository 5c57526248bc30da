"""Events this project created: how they are tagged, recognised and described to the caller.

Only events carrying the private tag `vapiCalendar=1` may be found, moved or cancelled by a tool;
anything else on the calendar (the owner's own events) is invisible to the lifecycle tools,
whatever id the assistant sends. And a caller reaches only their own appointments (the
`appointmentAccess` rule): those booked from the number they call from, or earlier in the same
call, whatever number, email or id the assistant passes — arguments can narrow that, never widen
it.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from vapi_calendar.ports.calendar import Event
from vapi_calendar.tools.context import CallContext, ToolContext
from vapi_calendar.tools.errors import EventNotFound
from vapi_calendar.tools.rules import BookingRules
from vapi_calendar.tools.slots import Interval
from vapi_calendar.tools.spoken import spoken
from vapi_calendar.tools.timeparse import to_iso

CREATED_BY_KEY = "vapiCalendar"
CREATED_BY_VALUE = "1"
OURS = {CREATED_BY_KEY: CREATED_BY_VALUE}
PHONE_KEY = "attendeePhone"  # the number given at booking, else the caller's
CALLER_KEY = "callerNumber"  # the number the booking call came from (set by the platform)
CALL_KEY = "callId"
# Google event ids are base32hex; anything else cannot be ours, so no request is spent on it.
_EVENT_ID = re.compile(r"^[a-v0-9]{5,1024}$")


def normalize_phone(value: str | None) -> str | None:
    """'+1 (415) 555-0123' → '+14155550123': digits, keeping a leading plus."""
    if not value:
        return None
    digits = re.sub(r"\D", "", value)
    if not digits:
        return None
    return ("+" if value.strip().startswith("+") else "") + digits


def reachable(event: Event, rules: BookingRules, call: CallContext) -> bool:
    """Whether this call may see and change `event` (one of ours) under `appointmentAccess`."""
    if rules.appointment_access == "anyone":
        return True
    caller = normalize_phone(call.caller_number)
    if caller is not None and caller in (
        normalize_phone(event.tags.get(CALLER_KEY)),
        normalize_phone(event.tags.get(PHONE_KEY)),
    ):
        return True
    return call.call_id is not None and event.tags.get(CALL_KEY) == call.call_id


def is_ours(event: Event) -> bool:
    return event.tags.get(CREATED_BY_KEY) == CREATED_BY_VALUE and event.start is not None


def event_interval(event: Event) -> Interval:
    if event.start is None or event.end is None:
        raise ValueError("an all-day event has no interval")
    return Interval(event.start, event.end)


def appointment_json(event: Event, tz: ZoneInfo, now: datetime) -> dict[str, Any]:
    when = event_interval(event)
    return {
        "eventId": event.id,
        "start": to_iso(when.start, tz),
        "end": to_iso(when.end, tz),
        "summary": event.summary or "Appointment",
        "spoken": spoken(when.start, tz, now=now),
    }


async def own_event(ctx: ToolContext, rules: BookingRules, event_id: str) -> Event:
    """The event if this project created it on the user's booking calendar and this call may
    reach it; otherwise the same neutral "not found", so nothing is revealed.

    Cancelled events are returned (cancelling twice is a success); callers that need a live
    event check `cancelled` themselves.
    """
    if not _EVENT_ID.match(event_id):
        raise EventNotFound()
    event = await ctx.calendar.get_event(rules.booking_calendar_id, event_id)
    if not is_ours(event) or not reachable(event, rules, ctx.call):
        raise EventNotFound()
    return event
