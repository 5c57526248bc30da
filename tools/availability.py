"""checkAvailability: is the requested time bookable under the user's rules, and what is.

One freeBusy query covers every busy calendar over the requested window and the days
alternatives are drawn from, so a call costs one Google request (two when a per-day maximum
needs our bookings counted).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import Field

from vapi_calendar.tools.arguments import ToolArguments
from vapi_calendar.tools.context import ToolContext
from vapi_calendar.tools.rules import BookingRules
from vapi_calendar.tools.scheduling import (
    MAX_SLOTS,
    load_schedule,
    read_request,
    slot_json,
    unavailable_message,
    with_incomplete,
)
from vapi_calendar.tools.slots import Interval
from vapi_calendar.tools.spoken import spoken_choices, spoken_range


class CheckAvailabilityArguments(ToolArguments):
    start_date_time: str = Field(
        description=(
            "Start of the time asked about, local wall time without offset, "
            "e.g. 2031-03-11T14:00:00."
        )
    )
    end_date_time: str | None = Field(
        default=None,
        description=(
            "End of a range to search, same format; omit to ask about one appointment "
            "starting at startDateTime."
        ),
    )
    duration_minutes: int | None = Field(
        default=None,
        ge=5,
        le=720,
        description="Appointment length in minutes; omit for the business's usual length.",
    )
    time_zone: str | None = Field(
        default=None,
        description=(
            "IANA time zone the caller's times are in, e.g. America/Chicago; "
            "omit when they mean the business's local time."
        ),
    )


async def check_availability(ctx: ToolContext, args: CheckAvailabilityArguments) -> dict[str, Any]:
    rules = BookingRules.for_user(ctx.user.rules)
    request = read_request(
        ctx,
        args,
        end_is_appointment_end=False,
        default_duration=timedelta(minutes=rules.default_duration_minutes),
    )
    window, tz, now = request.window, request.tz, ctx.now
    schedule = await load_schedule(ctx, rules, window)

    refusal = schedule.refusal(window)
    slots = schedule.free(window, request.duration, limit=MAX_SLOTS)
    result: dict[str, Any] = {
        "available": refusal is None,
        "timeZone": ctx.user.timezone,
        "requested": slot_json(window, tz, now),
        "durationMinutes": int(request.duration.total_seconds() // 60),
        "slots": [slot_json(slot, tz, now) for slot in slots],
    }
    when = spoken_range(window.start, window.end, tz, now=now)
    if refusal is None:
        result["message"] = f"{when} is free."
        return with_incomplete(schedule, result)
    result["reason"] = refusal.reason
    if slots:
        choices = spoken_choices([slot.start for slot in slots[:3]], tz, now)
        result["message"] = f"Not all of {when} is free. Open times: {choices}."
        return with_incomplete(schedule, result)
    alternatives = schedule.alternatives(Interval(window.start, window.start + request.duration))
    result["alternatives"] = [slot_json(slot, tz, now) for slot in alternatives]
    result["message"] = unavailable_message(when, refusal, alternatives, tz, now)
    return with_incomplete(schedule, result)
