"""cancelAppointment: delete one of our appointments; already cancelled counts as done.

The caller wants the appointment gone; if it already is (an earlier delivery of this call, or
another call), saying "cancelled" is the truthful answer, so a 410 from Google is a success.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from tools.appointments import appointment_json, own_event, remembered
from tools.booking import send_updates
from tools.context import ToolArguments, ToolContext, parse_arguments
from tools.google_calendar import EventGone
from tools.rules import BookingRules


class CancelAppointmentArguments(ToolArguments):
    event_id: str = Field(
        max_length=1024, description="The eventId from findAppointments or scheduleAppointment."
    )


async def cancel_appointment(ctx: ToolContext, arguments: dict[str, Any]) -> dict[str, Any]:
    args = parse_arguments(CancelAppointmentArguments, arguments)
    rules = BookingRules.for_user(ctx.user.rules)

    async def compute() -> dict[str, Any]:
        event = await own_event(ctx, rules.booking_calendar_id, args.event_id)
        appointment = appointment_json(event, ctx.user_tz, ctx.now)
        already = event.get("status") == "cancelled"
        if not already:
            try:
                await ctx.calendar.delete_event(
                    rules.booking_calendar_id, event["id"], send_updates=send_updates(rules, event)
                )
            except EventGone:  # deleted between our read and our delete
                already = True
        what = f"{appointment['summary']} on {appointment['spoken']}"
        return {
            "cancelled": True,
            "alreadyCancelled": already,
            **appointment,
            "timeZone": ctx.user.timezone,
            "message": f"{what} was already cancelled." if already else f"Cancelled {what}.",
        }

    return await remembered(ctx, "cancel", compute)
