"""scheduleAppointment: re-check the slot, then insert — once, whatever Vapi resends.

Idempotency has three layers, because a webhook can be delivered twice, concurrently, or after
a crash between "event inserted" and "answer stored":
1. the answer is stored under the toolCallId and replayed verbatim;
2. the Google event id is derived from (user, toolCallId), so a second insert is a 409
   `duplicate` that we answer from the existing event;
3. a "started" marker tells a later delivery to look for that event before re-checking the slot
   (otherwise our own first insert would make the slot look taken).
The per-calendar lease around "freeBusy re-check → insert" keeps two different calls from
booking the same slot.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime
from typing import Any

from pydantic import EmailStr, Field

from server.store.locks import LeaseTimeout, hold_lease
from tools.availability import PRIMARY
from tools.context import ToolArguments, ToolContext, parse_arguments
from tools.errors import CalendarUnavailable, InvalidArguments
from tools.google_calendar import DuplicateEvent, EventNotFound
from tools.scheduling import (
    MAX_ALTERNATIVES,
    Request,
    alternatives_range,
    read_request,
    slot_json,
    slot_step,
    spoken_choices,
)
from tools.slots import Interval, free_slots, is_free, merge, nearest_free
from tools.timeparse import spoken_range, to_iso

# Marks events this project created (extendedProperties.private), so later tools only ever
# touch their own bookings.
CREATED_BY_KEY = "vapiCalendar"
CREATED_BY_VALUE = "1"
RESULT_TTL_SECONDS = 7 * 24 * 3600
LOCK_TTL_SECONDS = 30.0
LOCK_WAIT_SECONDS = 5.0


class ScheduleAppointmentArguments(ToolArguments):
    start_date_time: str
    end_date_time: str | None = None
    duration_minutes: int | None = Field(default=None, ge=5, le=720)
    summary: str = Field(default="Appointment", max_length=300)
    attendees: list[EmailStr] = Field(default_factory=list, max_length=20)
    attendee_name: str | None = Field(default=None, max_length=200)
    attendee_phone: str | None = Field(default=None, max_length=40)
    description: str | None = Field(default=None, max_length=4000)
    time_zone: str | None = None


def event_id_for(user_id: str, tool_call_id: str) -> str:
    """A Google event id (base32hex, lowercase) that only this user's tool call can produce."""
    digest = hashlib.sha256(f"{user_id}\x00{tool_call_id}".encode()).digest()
    return base64.b32hexencode(digest).decode().rstrip("=").lower()


def _description(args: ScheduleAppointmentArguments) -> str:
    lines = [args.description] if args.description else []
    if args.attendee_name:
        lines.append(f"Name: {args.attendee_name}")
    if args.attendee_phone:
        lines.append(f"Phone: {args.attendee_phone}")
    lines.append("Booked by phone through the voice assistant.")
    return "\n".join(lines)


def _event_body(ctx: ToolContext, args: ScheduleAppointmentArguments, slot: Interval) -> dict:
    private = {CREATED_BY_KEY: CREATED_BY_VALUE, "toolCallId": ctx.tool_call_id}
    if ctx.call.call_id:
        private["callId"] = ctx.call.call_id
    if args.attendee_phone:
        private["attendeePhone"] = args.attendee_phone
    return {
        "id": event_id_for(ctx.user.id, ctx.tool_call_id),
        "summary": args.summary,
        "description": _description(args),
        "start": {"dateTime": to_iso(slot.start, ctx.user_tz), "timeZone": ctx.user.timezone},
        "end": {"dateTime": to_iso(slot.end, ctx.user_tz), "timeZone": ctx.user.timezone},
        "attendees": [{"email": email} for email in args.attendees],
        "extendedProperties": {"private": private},
    }


def _booked(ctx: ToolContext, event: dict[str, Any], summary: str) -> dict[str, Any]:
    tz, now = ctx.user_tz, ctx.now
    start = datetime.fromisoformat(event["start"]["dateTime"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(event["end"]["dateTime"].replace("Z", "+00:00"))
    return {
        "booked": True,
        "eventId": event["id"],
        "start": to_iso(start, tz),
        "end": to_iso(end, tz),
        "timeZone": ctx.user.timezone,
        "message": f"Booked {summary} for {spoken_range(start, end, tz, now=now)}.",
    }


async def _existing_booking(ctx: ToolContext, summary: str) -> dict[str, Any] | None:
    try:
        event = await ctx.calendar.get_event(PRIMARY, event_id_for(ctx.user.id, ctx.tool_call_id))
    except EventNotFound:
        return None
    if event.get("status") == "cancelled":
        return None
    return _booked(ctx, event, summary)


def _not_available(ctx: ToolContext, request: Request, busy: list[Interval]) -> dict:
    tz, now = request.tz, ctx.now
    target = Interval(request.window.start, request.window.start + request.duration)
    nearby = free_slots(
        alternatives_range(target, now), busy, request.duration, step=slot_step(request.duration)
    )
    alternatives = nearest_free(target, nearby, MAX_ALTERNATIVES)
    when = spoken_range(target.start, target.end, tz, now=now)
    message = (
        f"{when} is already taken. Nearest open times: {spoken_choices(alternatives, tz, now)}."
        if alternatives
        else f"{when} is already taken, and nothing nearby is free."
    )
    return {
        "booked": False,
        "timeZone": ctx.user.timezone,
        "alternatives": [slot_json(slot, tz, now) for slot in alternatives],
        "message": message,
    }


async def schedule_appointment(ctx: ToolContext, arguments: dict[str, Any]) -> dict[str, Any]:
    args = parse_arguments(ScheduleAppointmentArguments, arguments)
    request = read_request(
        ctx,
        start=args.start_date_time,
        end=args.end_date_time,
        duration_minutes=args.duration_minutes,
        time_zone=args.time_zone,
        end_is_appointment_end=True,
    )
    if request.window.start < ctx.now:
        raise InvalidArguments("That time has already passed. Please choose a later time.")
    slot = Interval(request.window.start, request.window.start + request.duration)

    answer_key = f"booking-answer:{ctx.user.id}:{ctx.tool_call_id}"
    if (stored := await ctx.store.get_record(answer_key)) is not None:
        return json.loads(stored)
    started_key = f"booking-started:{ctx.user.id}:{ctx.tool_call_id}"
    first_attempt = await ctx.store.put_record(started_key, "1", RESULT_TTL_SECONDS)
    # An earlier delivery got this far; it may have inserted before dying.
    if not first_attempt and (existing := await _existing_booking(ctx, args.summary)):
        await ctx.store.put_record(answer_key, json.dumps(existing), RESULT_TTL_SECONDS)
        return existing

    try:
        async with hold_lease(
            ctx.store,
            f"booking:{ctx.user.id}:{PRIMARY}",
            ttl_seconds=LOCK_TTL_SECONDS,
            wait_seconds=LOCK_WAIT_SECONDS,
        ):
            # A concurrent delivery of this same call may have finished while we waited.
            if (stored := await ctx.store.get_record(answer_key)) is not None:
                return json.loads(stored)
            around = alternatives_range(slot, ctx.now)
            busy = merge(await ctx.calendar.busy([PRIMARY], around, ctx.user.timezone))
            if not is_free(slot, busy):
                answer = _not_available(ctx, request, busy)
            else:
                try:
                    event = await ctx.calendar.insert_event(
                        PRIMARY,
                        _event_body(ctx, args, slot),
                        send_updates="all" if args.attendees else "none",
                    )
                except DuplicateEvent:
                    event = await ctx.calendar.get_event(
                        PRIMARY, event_id_for(ctx.user.id, ctx.tool_call_id)
                    )
                answer = _booked(ctx, event, args.summary)
            await ctx.store.put_record(answer_key, json.dumps(answer), RESULT_TTL_SECONDS)
            return answer
    except LeaseTimeout:
        raise CalendarUnavailable(
            "The calendar is busy with another booking. Please try again in a moment."
        ) from None
