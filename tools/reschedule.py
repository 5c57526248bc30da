"""rescheduleAppointment: move one of our appointments, all or nothing.

Under the booking calendar's lock (the same one scheduleAppointment takes) the new time is
checked against the rules and a fresh freeBusy read, with the appointment's own current time
not counting against it. Then one events.patch moves start and end: Google applies it as a
single write, so the new time is taken and the old one released together. There is no moment
where the caller has neither slot, and on any refusal nothing was written at all.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from vapi_calendar.tools.appointments import appointment_json, event_interval, own_event
from vapi_calendar.tools.arguments import ToolArguments
from vapi_calendar.tools.booking import booking_lock, send_updates
from vapi_calendar.tools.context import ToolContext
from vapi_calendar.tools.errors import EventNotFound
from vapi_calendar.tools.rules import BookingRules
from vapi_calendar.tools.scheduling import (
    load_schedule,
    read_request,
    slot_json,
    unavailable_message,
    with_incomplete,
)
from vapi_calendar.tools.slots import Interval
from vapi_calendar.tools.spoken import spoken_range
from vapi_calendar.tools.timeparse import to_iso


class RescheduleAppointmentArguments(ToolArguments):
    event_id: str = Field(
        max_length=1024, description="The eventId from findAppointments or scheduleAppointment."
    )
    start_date_time: str = Field(
        description="New start, local wall time without offset, e.g. 2031-03-11T14:00:00."
    )
    end_date_time: str | None = Field(
        default=None, description="New end, same format; omit to keep the current length."
    )
    duration_minutes: int | None = Field(
        default=None, ge=5, le=720, description="New length in minutes; omit to keep it."
    )
    time_zone: str | None = Field(
        default=None,
        description="IANA time zone of the caller's times; omit for the business's local time.",
    )


async def reschedule_appointment(
    ctx: ToolContext, args: RescheduleAppointmentArguments
) -> dict[str, Any]:
    rules = BookingRules.for_user(ctx.user.rules)
    calendar_id = rules.booking_calendar_id
    tz, now = ctx.user_tz, ctx.now
    async with booking_lock(ctx, rules):
        event = await own_event(ctx, rules, args.event_id)
        if event.cancelled:
            raise EventNotFound("That appointment was cancelled, so it cannot be moved.")
        current = event_interval(event)
        request = read_request(
            ctx,
            args,
            end_is_appointment_end=True,
            default_duration=current.duration,  # same length unless told otherwise
        )
        slot = Interval(request.window.start, request.window.start + request.duration)
        schedule = await load_schedule(ctx, rules, slot, moving=event)
        refusal = schedule.refusal(slot)
        if refusal is not None:
            alternatives = schedule.alternatives(slot)
            when = spoken_range(slot.start, slot.end, tz, now=now)
            kept = spoken_range(current.start, current.end, tz, now=now)
            refused = {
                "rescheduled": False,
                "reason": refusal.reason,
                "timeZone": ctx.user.timezone,
                "appointment": appointment_json(event, tz, now),
                "alternatives": [slot_json(s, tz, now) for s in alternatives],
                "message": unavailable_message(when, refusal, alternatives, tz, now)
                + f" The appointment stays on {kept}.",
            }
            return with_incomplete(schedule, refused)
        moved = await ctx.calendar.move_event(
            calendar_id,
            event.id,
            slot.start,
            slot.end,
            timezone=ctx.user.timezone,
            send_updates=send_updates(rules, event.attendees),
        )
    result = appointment_json(moved, tz, now)
    when = spoken_range(slot.start, slot.end, tz, now=now)
    moved_answer = {
        "rescheduled": True,
        **result,
        "previousStart": to_iso(current.start, tz),
        "timeZone": ctx.user.timezone,
        "message": f"Moved {result['summary']} to {when}.",
    }
    return with_incomplete(schedule, moved_answer)
