"""findAppointments: the caller's upcoming appointments made through this project.

Scoped three times: only the resolved user's booking calendar, only events tagged as ours, and
only appointments this call may reach (`appointmentAccess`: by default those booked from the
number the call comes from, or earlier in the same call). A phone number or email the caller
gives narrows the list further; it never widens it. With `anyone` (a staff line) the caller is
matched by the number they give or call from, or an email; without either the tool refuses
rather than list everyone's appointments. One events.list request.
"""

from __future__ import annotations

from typing import Any

from pydantic import EmailStr, Field

from vapi_calendar.ports.calendar import Event
from vapi_calendar.tools.appointments import (
    OURS,
    PHONE_KEY,
    appointment_json,
    normalize_phone,
    reachable,
)
from vapi_calendar.tools.arguments import ToolArguments
from vapi_calendar.tools.context import ToolContext
from vapi_calendar.tools.errors import InvalidArguments
from vapi_calendar.tools.rules import BookingRules
from vapi_calendar.tools.timeparse import parse_datetime

MAX_FOUND = 5


class FindAppointmentsArguments(ToolArguments):
    attendee_phone: str | None = Field(
        default=None,
        max_length=40,
        description="Phone number the appointment was booked with; omit to use the caller's.",
    )
    attendee_email: EmailStr | None = Field(
        default=None, description="Email address the appointment was booked with, if given."
    )
    start_date_time: str | None = Field(
        default=None,
        description="Only appointments ending after this local time; omit for upcoming ones.",
    )
    end_date_time: str | None = Field(
        default=None, description="Only appointments starting before this local time."
    )


def _matches(event: Event, phone: str | None, email: str | None) -> bool:
    if phone and normalize_phone(event.tags.get(PHONE_KEY)) == phone:
        return True
    attendees = {address.lower() for address in event.attendees}
    return bool(email) and email in attendees


async def find_appointments(ctx: ToolContext, args: FindAppointmentsArguments) -> dict[str, Any]:
    rules = BookingRules.for_user(ctx.user.rules)
    phone = normalize_phone(args.attendee_phone)
    email = args.attendee_email.lower() if args.attendee_email else None
    scoped = rules.appointment_access == "caller"
    if not scoped and phone is None and email is None:
        phone = normalize_phone(ctx.call.caller_number)
        if phone is None:
            raise InvalidArguments(
                "I need the phone number or email address the appointment was booked with."
            )
    tz = ctx.user_tz
    # Upcoming by default; an explicit range may reach back (e.g. "the one I had Monday").
    start = ctx.now
    if args.start_date_time:
        start = parse_datetime(args.start_date_time, tz, allow_date=True)
    end = None
    if args.end_date_time:
        end = parse_datetime(args.end_date_time, tz, allow_date=True)
        if end <= start:
            raise InvalidArguments("The end of the search must be after its start.")

    events = await ctx.calendar.list_events(
        rules.booking_calendar_id, time_min=start, time_max=end, tags=OURS
    )
    mine = [
        e
        for e in events
        if e.start is not None
        and reachable(e, rules, ctx.call)
        and ((phone is None and email is None) or _matches(e, phone, email))
    ]
    found = [appointment_json(e, tz, ctx.now) for e in mine[:MAX_FOUND]]
    return {
        "appointments": found,
        "count": len(mine),
        "timeZone": ctx.user.timezone,
        "message": _message(found, len(mine)),
    }


def _message(found: list[dict[str, Any]], total: int) -> str:
    if not found:
        return "I found no upcoming appointments for you."
    listed = "; ".join(f"{a['summary']} on {a['spoken']}" for a in found)
    if total == 1:
        return f"You have one appointment: {listed}."
    more = f" The first {len(found)} are:" if total > len(found) else ""
    return f"You have {total} appointments.{more} {listed}."
