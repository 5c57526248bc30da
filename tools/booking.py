"""scheduleAppointment: re-check the slot under the rules, then insert, once, whatever Vapi resends.

Idempotency has three layers, because a webhook can be delivered twice, concurrently, or after
a crash between "event inserted" and "answer stored":
1. the answer is stored under the toolCallId and replayed verbatim;
2. the Google event id is derived from (user, toolCallId), so a second insert is a 409
   `duplicate` that we answer from the existing event;
3. a "started" marker tells a later delivery to look for that event before re-checking the slot
   (otherwise our own first insert would make the slot look taken).
The booking-calendar lease around "freeBusy re-check → insert" keeps two different calls from
booking the same slot: it lives in the store, so it holds across processes, and expires if its
holder dies.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from pydantic import EmailStr, Field

from server.store.locks import LeaseTimeout, hold_lease
from tools.appointments import (
    CREATED_BY_KEY,
    CREATED_BY_VALUE,
    PHONE_KEY,
    RESULT_TTL_SECONDS,
    event_interval,
    normalize_phone,
)
from tools.context import ToolArguments, ToolContext, parse_arguments
from tools.errors import CalendarUnavailable, InvalidArguments
from tools.google_calendar import DuplicateEvent, EventNotFound
from tools.rules import BookingRules
from tools.scheduling import (
    Refusal,
    Request,
    Schedule,
    load_schedule,
    read_request,
    slot_json,
    unavailable_message,
)
from tools.slots import Interval
from tools.timeparse import spoken, spoken_range, to_iso

__all__ = ["CREATED_BY_KEY", "ScheduleAppointmentArguments", "event_id_for", "schedule_appointment"]

LOCK_TTL_SECONDS = 30.0
LOCK_WAIT_SECONDS = 5.0


class ScheduleAppointmentArguments(ToolArguments):
    start_date_time: str = Field(
        description="Appointment start, local wall time without offset, e.g. 2031-03-11T14:00:00."
    )
    end_date_time: str | None = Field(
        default=None, description="Appointment end, same format; or give durationMinutes."
    )
    duration_minutes: int | None = Field(
        default=None,
        ge=5,
        le=720,
        description="Appointment length in minutes; omit for the business's usual length.",
    )
    summary: str = Field(
        default="Appointment",
        max_length=300,
        description="Short title, e.g. 'Haircut with Sam Lee'.",
    )
    attendees: list[EmailStr] = Field(
        default_factory=list,
        max_length=20,
        description="Email addresses to invite, only if the caller gave them.",
    )
    attendee_name: str | None = Field(
        default=None, max_length=200, description="The caller's name."
    )
    attendee_phone: str | None = Field(
        default=None,
        max_length=40,
        description="The caller's phone number if they gave a different one than they call from.",
    )
    description: str | None = Field(
        default=None, max_length=4000, description="Notes for the business, e.g. the reason."
    )
    time_zone: str | None = Field(
        default=None,
        description="IANA time zone of the caller's times; omit for the business's local time.",
    )


def event_id_for(user_id: str, tool_call_id: str) -> str:
    """A Google event id (base32hex, lowercase) that only this user's tool call can produce."""
    digest = hashlib.sha256(f"{user_id}\x00{tool_call_id}".encode()).digest()
    return base64.b32hexencode(digest).decode().rstrip("=").lower()


def lock_name(user_id: str, calendar_id: str) -> str:
    """One lock per booking calendar. "primary" is per user; other ids name one Google
    calendar wherever it is shared, so two users booking into it take the same lock."""
    if calendar_id == "primary":
        return f"booking:{user_id}:primary"
    return f"booking:calendar:{calendar_id}"


@asynccontextmanager
async def booking_lock(ctx: ToolContext, rules: BookingRules) -> AsyncIterator[None]:
    """The booking calendar's lease, turned into a sentence when it stays taken too long."""
    try:
        async with hold_lease(
            ctx.store,
            lock_name(ctx.user.id, rules.booking_calendar_id),
            ttl_seconds=ctx.booking_lease_seconds or LOCK_TTL_SECONDS,
            wait_seconds=LOCK_WAIT_SECONDS,
        ):
            yield
    except LeaseTimeout:
        raise CalendarUnavailable(
            "The calendar is busy with another booking. Please try again in a moment."
        ) from None


def send_updates(rules: BookingRules, event: dict[str, Any]) -> str:
    """Invite or notify attendees only when there are any."""
    return rules.send_updates if event.get("attendees") else "none"


def _description(args: ScheduleAppointmentArguments, phone: str | None) -> str:
    lines = [args.description] if args.description else []
    if args.attendee_name:
        lines.append(f"Name: {args.attendee_name}")
    if phone:
        lines.append(f"Phone: {phone}")
    lines.append("Booked by phone through the voice assistant.")
    return "\n".join(lines)


def _event_body(
    ctx: ToolContext, rules: BookingRules, args: ScheduleAppointmentArguments, slot: Interval
) -> dict[str, Any]:
    event_id = event_id_for(ctx.user.id, ctx.tool_call_id)
    private = {CREATED_BY_KEY: CREATED_BY_VALUE, "toolCallId": ctx.tool_call_id}
    if ctx.call.call_id:
        private["callId"] = ctx.call.call_id
    # The number the caller gave, else the one they call from: findAppointments matches on it.
    phone = normalize_phone(args.attendee_phone) or normalize_phone(ctx.call.customer_number)
    if phone:
        private[PHONE_KEY] = phone
    body: dict[str, Any] = {
        "id": event_id,
        "summary": args.summary,
        "description": _description(args, phone),
        "start": {"dateTime": to_iso(slot.start, ctx.user_tz), "timeZone": ctx.user.timezone},
        "end": {"dateTime": to_iso(slot.end, ctx.user_tz), "timeZone": ctx.user.timezone},
        "attendees": [{"email": email} for email in args.attendees],
        "extendedProperties": {"private": private},
    }
    if rules.add_google_meet:
        # requestId must be unique per conference; the event id already is.
        solution = {"type": "hangoutsMeet"}
        body["conferenceData"] = {
            "createRequest": {"requestId": event_id, "conferenceSolutionKey": solution}
        }
    return body


def _booked(ctx: ToolContext, event: dict[str, Any], summary: str) -> dict[str, Any]:
    tz, now = ctx.user_tz, ctx.now
    when = event_interval(event)
    answer = {
        "booked": True,
        "eventId": event["id"],
        "start": to_iso(when.start, tz),
        "end": to_iso(when.end, tz),
        "spoken": spoken(when.start, tz, now=now),
        "timeZone": ctx.user.timezone,
        "message": f"Booked {summary} for {spoken_range(when.start, when.end, tz, now=now)}.",
    }
    if event.get("hangoutLink"):
        answer["meetLink"] = event["hangoutLink"]
    return answer


async def _existing_booking(
    ctx: ToolContext, rules: BookingRules, summary: str
) -> dict[str, Any] | None:
    try:
        event = await ctx.calendar.get_event(
            rules.booking_calendar_id, event_id_for(ctx.user.id, ctx.tool_call_id)
        )
    except EventNotFound:
        return None
    if event.get("status") == "cancelled":
        return None
    return _booked(ctx, event, summary)


def not_bookable(
    ctx: ToolContext, request: Request, schedule: Schedule, refusal: Refusal, slot: Interval
) -> dict[str, Any]:
    tz, now = request.tz, ctx.now
    alternatives = schedule.alternatives(slot)
    when = spoken_range(slot.start, slot.end, tz, now=now)
    return {
        "booked": False,
        "reason": refusal.reason,
        "timeZone": ctx.user.timezone,
        "requested": slot_json(slot, tz, now),
        "alternatives": [slot_json(s, tz, now) for s in alternatives],
        "message": unavailable_message(when, refusal, alternatives, tz, now),
    }


async def schedule_appointment(ctx: ToolContext, arguments: dict[str, Any]) -> dict[str, Any]:
    args = parse_arguments(ScheduleAppointmentArguments, arguments)
    rules = BookingRules.for_user(ctx.user.rules)
    request = read_request(
        ctx,
        args,
        end_is_appointment_end=True,
        default_duration=timedelta(minutes=rules.default_duration_minutes),
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
    if not first_attempt and (existing := await _existing_booking(ctx, rules, args.summary)):
        await ctx.store.put_record(answer_key, json.dumps(existing), RESULT_TTL_SECONDS)
        return existing

    async with booking_lock(ctx, rules):
        # A concurrent delivery of this same call may have finished while we waited.
        if (stored := await ctx.store.get_record(answer_key)) is not None:
            return json.loads(stored)
        schedule = await load_schedule(ctx, rules, slot)
        refusal = schedule.refusal(slot)
        if refusal is not None:
            answer = not_bookable(ctx, request, schedule, refusal, slot)
        else:
            body = _event_body(ctx, rules, args, slot)
            try:
                event = await ctx.calendar.insert_event(
                    rules.booking_calendar_id,
                    body,
                    send_updates=send_updates(rules, body),
                    conference_data_version=1 if rules.add_google_meet else 0,
                )
            except DuplicateEvent:
                event = await ctx.calendar.get_event(rules.booking_calendar_id, body["id"])
            answer = _booked(ctx, event, args.summary)
        await ctx.store.put_record(answer_key, json.dumps(answer), RESULT_TTL_SECONDS)
        return answer
