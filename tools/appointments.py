"""Events this project created: how they are tagged, recognised and described to the caller.

Only events carrying the private extended property `vapiCalendar=1` may be found, moved or
cancelled by a tool; anything else on the calendar (the owner's own events) is invisible to the
lifecycle tools, whatever id the assistant sends.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from tools.context import ToolContext
from tools.google_calendar import EventNotFound, parse_rfc3339
from tools.slots import Interval
from tools.timeparse import spoken, to_iso

CREATED_BY_KEY = "vapiCalendar"
CREATED_BY_VALUE = "1"
PHONE_KEY = "attendeePhone"
RESULT_TTL_SECONDS = 7 * 24 * 3600
# Google event ids are base32hex; anything else cannot be ours, so no request is spent on it.
_EVENT_ID = re.compile(r"^[a-v0-9]{5,1024}$")


class AppointmentNotFound(EventNotFound):
    default_message = "I could not find that appointment."


def normalize_phone(value: str | None) -> str | None:
    """'+1 (415) 555-0123' → '+14155550123': digits, keeping a leading plus."""
    if not value:
        return None
    digits = re.sub(r"\D", "", value)
    if not digits:
        return None
    return ("+" if value.strip().startswith("+") else "") + digits


def is_ours(event: dict[str, Any]) -> bool:
    private = (event.get("extendedProperties") or {}).get("private") or {}
    return private.get(CREATED_BY_KEY) == CREATED_BY_VALUE and "dateTime" in event.get("start", {})


def event_interval(event: dict[str, Any]) -> Interval:
    start, end = event["start"]["dateTime"], event["end"]["dateTime"]
    return Interval(parse_rfc3339(start), parse_rfc3339(end))


def appointment_json(event: dict[str, Any], tz: ZoneInfo, now: datetime) -> dict[str, Any]:
    when = event_interval(event)
    return {
        "eventId": event["id"],
        "start": to_iso(when.start, tz),
        "end": to_iso(when.end, tz),
        "summary": event.get("summary") or "Appointment",
        "spoken": spoken(when.start, tz, now=now),
    }


async def own_event(ctx: ToolContext, calendar_id: str, event_id: str) -> dict[str, Any]:
    """The event if this project created it on the user's booking calendar, else not found.

    Cancelled events are returned (cancelling twice is a success); callers that need a live
    event check `status` themselves.
    """
    if not _EVENT_ID.match(event_id):
        raise AppointmentNotFound()
    try:
        event = await ctx.calendar.get_event(calendar_id, event_id)
    except EventNotFound:
        raise AppointmentNotFound() from None
    if not is_ours(event):
        raise AppointmentNotFound()
    return event


async def remembered(
    ctx: ToolContext, tool: str, compute: Callable[[], Awaitable[dict[str, Any]]]
) -> dict[str, Any]:
    """Answer a toolCallId once: a redelivered webhook gets the stored answer, not a second run.

    Errors are not stored, so a retry after a transient failure runs again.
    """
    key = f"{tool}-answer:{ctx.user.id}:{ctx.tool_call_id}"
    if (stored := await ctx.store.get_record(key)) is not None:
        return json.loads(stored)
    answer = await compute()  # a ToolError propagates unstored
    await ctx.store.put_record(key, json.dumps(answer), RESULT_TTL_SECONDS)
    # First writer wins: a concurrent delivery that finished earlier decides the answer.
    stored = await ctx.store.get_record(key)
    return json.loads(stored) if stored is not None else answer
