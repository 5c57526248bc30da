"""checkAvailability: is the requested time free, and what is free around it.

One freeBusy query covers the requested window and the range alternatives are drawn from, so a
call costs exactly one Google request.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from tools.context import ToolArguments, ToolContext, parse_arguments
from tools.scheduling import (
    MAX_ALTERNATIVES,
    MAX_SLOTS,
    alternatives_range,
    read_request,
    slot_json,
    slot_step,
    spoken_choices,
)
from tools.slots import Interval, free_slots, is_free, merge, nearest_free
from tools.timeparse import spoken_range

PRIMARY = "primary"


class CheckAvailabilityArguments(ToolArguments):
    start_date_time: str
    end_date_time: str | None = None
    duration_minutes: int | None = Field(default=None, ge=5, le=720)
    time_zone: str | None = None


async def check_availability(ctx: ToolContext, arguments: dict[str, Any]) -> dict[str, Any]:
    args = parse_arguments(CheckAvailabilityArguments, arguments)
    request = read_request(
        ctx,
        start=args.start_date_time,
        end=args.end_date_time,
        duration_minutes=args.duration_minutes,
        time_zone=args.time_zone,
        end_is_appointment_end=False,
    )
    window, tz, now = request.window, request.tz, ctx.now
    around = alternatives_range(window, now)
    searched = Interval(min(around.start, window.start), max(around.end, window.end))
    busy = merge(await ctx.calendar.busy([PRIMARY], searched, ctx.user.timezone))

    bookable = Interval(max(window.start, now), window.end)
    available = window.start >= now and is_free(window, busy)
    slots = (
        free_slots(
            bookable, busy, request.duration, step=slot_step(request.duration), limit=MAX_SLOTS
        )
        if bookable.end - bookable.start >= request.duration
        else []
    )
    result: dict[str, Any] = {
        "available": available,
        "timeZone": ctx.user.timezone,
        "requested": slot_json(window, tz, now),
        "durationMinutes": int(request.duration.total_seconds() // 60),
        "slots": [slot_json(slot, tz, now) for slot in slots],
    }
    when = spoken_range(window.start, window.end, tz, now=now)
    if available:
        result["message"] = f"{when} is free."
    elif slots:
        result["message"] = (
            f"Not all of {when} is free. Open times: {spoken_choices(slots[:3], tz, now)}."
        )
    else:
        nearby = free_slots(around, busy, request.duration, step=slot_step(request.duration))
        alternatives = nearest_free(
            Interval(window.start, window.start + request.duration), nearby, MAX_ALTERNATIVES
        )
        result["alternatives"] = [slot_json(slot, tz, now) for slot in alternatives]
        result["message"] = (
            f"{when} is not available. Nearest open times: {spoken_choices(alternatives, tz, now)}."
            if alternatives
            else f"{when} is not available, and nothing nearby is free either."
        )
    return result
