"""cancelAppointment: delete one of our appointments; already cancelled counts as done.

The caller wants the appointment gone; if it already is (an earlier delivery of this call, or
another call), saying "cancelled" is the truthful answer, so `EventGone` is a success.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from vapi_calendar.tools.appointments import appointment_json, own_event
from vapi_calendar.tools.arguments import ToolArguments
from vapi_calendar.tools.booking import send_updates
from vapi_calendar.tools.context import ToolContext
from vapi_calendar.tools.errors import EventGone
from vapi_calendar.tools.rules import BookingRules


class CancelAppointmentArguments(ToolArguments):
    event_id: str = Field(
        max_length=1024, description="The eventId from findAppointments or scheduleAppointment."
    )


async def cancel_appointment(ctx: ToolContext, args: CancelAppointmentArguments) -> dict[str, Any]:
    rules = BookingRules.for_user(ctx.user.rules)
    event = await own_event(ctx, rules, args.event_id)
    appointment = appointment_json(event, ctx.user_tz, ctx.now)
    already = event.cancelled
    if not already:
        try:
            await ctx.calendar.delete_event(
                rules.booking_calendar_id,
                event.id,
                send_updates=send_updates(rules, event.attendees),
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
