"""scheduleAppointment: re-check the slot under the rules, then insert, once, whatever Vapi resends.

Idempotency has three layers, because a webhook can be delivered twice, concurrently, or after
a crash between "event inserted" and "answer stored":
1. the answer is stored under the tool call id and replayed verbatim (`ctx.answers`);
2. the event id is derived from (user, tool call id), so a second insert is a `DuplicateEvent`
   that we answer from the existing event;
3. a first-attempt marker tells a later delivery to look for that event before re-checking the
   slot (otherwise our own first insert would make the slot look taken).
The booking calendar's lock around "busy re-check → insert" keeps two different calls from
booking the same slot: it is a store lease, so it holds across processes, and expires if its
holder dies.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from pydantic import EmailStr, Field

from vapi_calendar.ports.calendar import DuplicateEvent, Event, NewEvent
from vapi_calendar.ports.locks import LockTimeout
from vapi_calendar.tools.appointments import (
    CALL_KEY,
    CALLER_KEY,
    CREATED_BY_KEY,
    CREATED_BY_VALUE,
    PHONE_KEY,
    event_interval,
    normalize_phone,
)
from vapi_calendar.tools.arguments import ToolArguments
from vapi_calendar.tools.context import ToolContext
from vapi_calendar.tools.errors import (
    BookingCancelled,
    CalendarBusy,
    EventNotFound,
    InvalidArguments,
)
from vapi_calendar.tools.rules import BookingRules
from vapi_calendar.tools.scheduling import (
    Refusal,
    Request,
    Schedule,
    load_schedule,
    read_request,
    slot_json,
    unavailable_message,
    with_incomplete,
)
from vapi_calendar.tools.slots import Interval
from vapi_calendar.tools.spoken import spoken, spoken_range
from vapi_calendar.tools.timeparse import to_iso

__all__ = ["ScheduleAppointmentArguments", "event_id_for", "schedule_appointment"]

# How long a booking waits for another booking of the same calendar to finish.
LOCK_WAIT_SECONDS = 5.0
MEET_LINK_LATER = "The video meeting link will come with the calendar invitation."


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
    """The booking calendar's lock, turned into a sentence when it stays taken too long."""
    calendar_id = rules.booking_calendar_id
    # A shared calendar's lock belongs to no one user.
    owner = ctx.user.id if calendar_id == "primary" else None
    try:
        async with ctx.locks.hold(
            lock_name(ctx.user.id, calendar_id), wait_seconds=LOCK_WAIT_SECONDS, owner=owner
        ):
            yield
    except LockTimeout:
        raise CalendarBusy() from None


def send_updates(rules: BookingRules, attendees: tuple[str, ...]) -> str:
    """Invite or notify attendees only when there are any."""
    return rules.send_updates if attendees else "none"


def _description(args: ScheduleAppointmentArguments, phone: str | None) -> str:
    lines = [args.description] if args.description else []
    if args.attendee_name:
        lines.append(f"Name: {args.attendee_name}")
    if phone:
        lines.append(f"Phone: {phone}")
    lines.append("Booked by phone through the voice assistant.")
    return "\n".join(lines)


def _new_event(
    ctx: ToolContext, rules: BookingRules, args: ScheduleAppointmentArguments, slot: Interval
) -> NewEvent:
    tags = {CREATED_BY_KEY: CREATED_BY_VALUE, "toolCallId": ctx.tool_call_id}
    if ctx.call.call_id:
        tags[CALL_KEY] = ctx.call.call_id
    caller = normalize_phone(ctx.call.caller_number)
    if caller:
        tags[CALLER_KEY] = caller  # who may reach it later (`appointmentAccess`)
    # The number the caller gave, else the one they call from: findAppointments matches on it.
    phone = normalize_phone(args.attendee_phone) or caller
    if phone:
        tags[PHONE_KEY] = phone
    return NewEvent(
        id=event_id_for(ctx.user.id, ctx.tool_call_id),
        summary=args.summary,
        description=_description(args, phone),
        start=slot.start,
        end=slot.end,
        timezone=ctx.user.timezone,
        attendees=tuple(args.attendees),
        tags=tags,
        add_meeting=rules.online_meeting,
    )


def _booked(ctx: ToolContext, event: Event, summary: str) -> dict[str, Any]:
    tz, now = ctx.user_tz, ctx.now
    when = event_interval(event)
    answer = {
        "booked": True,
        "eventId": event.id,
        "start": to_iso(when.start, tz),
        "end": to_iso(when.end, tz),
        "spoken": spoken(when.start, tz, now=now),
        "timeZone": ctx.user.timezone,
        "message": f"Booked {summary} for {spoken_range(when.start, when.end, tz, now=now)}.",
    }
    if event.meeting_link:
        answer["meetLink"] = event.meeting_link
    elif event.meeting_pending:
        # Google creates the meeting asynchronously and it was not ready within the budget.
        answer["meetLinkPending"] = True
        answer["message"] = f"{answer['message']} {MEET_LINK_LATER}"
    return answer


def _booked_live(ctx: ToolContext, event: Event, summary: str) -> dict[str, Any]:
    """The answer for the event this tool call created, unless it has been cancelled since.

    The event id derives from the tool call id, so a cancelled event with it means this very
    booking was made and then cancelled (by the owner in Google Calendar, or by
    cancelAppointment) before this delivery of the call. It is refused rather than booked
    afresh: Google never reuses an event id (an insert stays 409), so a fresh booking would
    need an id this call cannot reproduce, and every later redelivery could book once more;
    and re-creating it would undo a cancellation someone made on purpose. The caller is still
    on the line: the assistant can book again, as a new tool call with its own id.
    """
    if event.cancelled:
        raise BookingCancelled()
    return _booked(ctx, event, summary)


async def _existing_booking(
    ctx: ToolContext, rules: BookingRules, summary: str
) -> dict[str, Any] | None:
    try:
        event = await ctx.calendar.get_event(
            rules.booking_calendar_id, event_id_for(ctx.user.id, ctx.tool_call_id)
        )
    except EventNotFound:
        return None
    return _booked_live(ctx, event, summary)


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


async def schedule_appointment(
    ctx: ToolContext, args: ScheduleAppointmentArguments
) -> dict[str, Any]:
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

    # An earlier delivery got this far; it may have inserted before dying.
    first = await ctx.answers.first_attempt()
    if not first and (existing := await _existing_booking(ctx, rules, args.summary)):
        return await ctx.answers.record(existing)

    async with booking_lock(ctx, rules):
        # A concurrent delivery of this same call may have finished while we waited. Only a
        # later delivery looks (one store round trip): when the first one meets a finished
        # later one here, its own answer (a refusal: the slot holds that event; or the
        # existing event, after `DuplicateEvent`) loses to the recorded one in `record`.
        if not first and (stored := await ctx.answers.recorded()) is not None:
            return stored
        schedule = await load_schedule(ctx, rules, slot)
        refusal = schedule.refusal(slot)
        if refusal is not None:
            answer = not_bookable(ctx, request, schedule, refusal, slot)
        else:
            new = _new_event(ctx, rules, args, slot)
            try:
                event = await ctx.calendar.insert_event(
                    rules.booking_calendar_id, new, send_updates=send_updates(rules, new.attendees)
                )
            except DuplicateEvent:
                # An earlier delivery inserted it and its answer was lost (see the module doc).
                event = await ctx.calendar.get_event(rules.booking_calendar_id, new.id)
                answer = _booked_live(ctx, event, args.summary)
            else:
                answer = _booked(ctx, event, args.summary)
        return await ctx.answers.record(with_incomplete(schedule, answer))
