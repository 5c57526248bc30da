"""The one tool table: every tool's name, purpose, argument model, behaviour and spoken lines.

The pipeline dispatches from it, the platform adapters render their tool definitions from it
(JSON schemas come from the same argument models the pipeline validates with), so what the LLM
is told and what the server accepts cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from vapi_calendar.tools.arguments import ToolArguments
from vapi_calendar.tools.availability import CheckAvailabilityArguments, check_availability
from vapi_calendar.tools.booking import ScheduleAppointmentArguments, schedule_appointment
from vapi_calendar.tools.cancel import CancelAppointmentArguments, cancel_appointment
from vapi_calendar.tools.context import ToolContext
from vapi_calendar.tools.find import FindAppointmentsArguments, find_appointments
from vapi_calendar.tools.reschedule import RescheduleAppointmentArguments, reschedule_appointment

Run = Callable[[ToolContext, Any], Awaitable[dict[str, Any]]]

_TIMES = (
    "Send date-times as local wall time without an offset or Z, e.g. 2031-03-11T14:00:00, "
    "in the business's time zone unless the caller names another one (then pass timeZone)."
)


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    description: str  # what the LLM is told
    arguments: type[ToolArguments]
    run: Run
    # Name under which each tool call's answer is kept, so a redelivered call gets the same
    # answer without touching the calendar again; None for read-only tools, which simply run.
    answer_key: str | None
    start: str  # said when the call starts
    delayed: str  # said if the answer takes a few seconds
    failed: str  # said if the server cannot be reached
    # Running it again with the same arguments changes nothing more (a lookup; a move to the
    # time it already has; a cancellation). Where a platform sends no tool call id, a repeat
    # within one conversation cannot be told from a new question, so such a tool runs again
    # (a lookup may have a new answer by then) instead of answering from the first call.
    idempotent: bool = False
    # The tool asks `ctx.answers.first_attempt()`: the pipeline takes that marker in the same
    # store round trip as its look for a recorded answer.
    marks_attempts: bool = False


TOOLS: tuple[Tool, ...] = (
    Tool(
        "checkAvailability",
        "Check whether a time can be booked on the business's calendar and get open times. "
        "Use it before offering or booking any time. "
        + _TIMES
        + " Returns available, reason, slots, alternatives (at most 3) and a short message; "
        "offer only times from the result.",
        CheckAvailabilityArguments,
        check_availability,
        None,
        "One moment, let me check the calendar.",
        "Still checking, thanks for waiting.",
        "Sorry, I can't reach the calendar right now.",
        idempotent=True,
    ),
    Tool(
        "scheduleAppointment",
        "Book an appointment once the caller has confirmed the exact day and time. "
        + _TIMES
        + " If booked is false the time was not available: offer the alternatives returned. "
        "Keep the eventId for changes.",
        ScheduleAppointmentArguments,
        schedule_appointment,
        "booking",
        "Booking that for you now.",
        "Almost done, just confirming the booking.",
        "Sorry, I couldn't complete the booking right now.",
        marks_attempts=True,
    ),
    Tool(
        "findAppointments",
        "Find the caller's upcoming appointments, by the phone number they are calling from "
        "unless they give another phone number or an email address. Use it before "
        "rescheduling or cancelling to get the eventId; confirm which appointment they mean.",
        FindAppointmentsArguments,
        find_appointments,
        "find",
        "Let me look up your appointments.",
        "Still looking, one moment.",
        "Sorry, I can't look up appointments right now.",
        idempotent=True,
    ),
    Tool(
        "rescheduleAppointment",
        "Move an existing appointment (eventId from findAppointments) to a new time the caller "
        "confirmed; the length stays the same unless given. "
        + _TIMES
        + " If rescheduled is false nothing changed and the old time is kept: offer the "
        "alternatives returned.",
        RescheduleAppointmentArguments,
        reschedule_appointment,
        "reschedule",
        "Let me move that for you.",
        "Still working on it, one moment.",
        "Sorry, I couldn't change the appointment right now.",
        idempotent=True,
    ),
    Tool(
        "cancelAppointment",
        "Cancel an appointment (eventId from findAppointments) after the caller confirmed "
        "which one. Cancelling an already cancelled appointment also succeeds.",
        CancelAppointmentArguments,
        cancel_appointment,
        "cancel",
        "Cancelling that now.",
        "Almost done, one moment.",
        "Sorry, I couldn't cancel the appointment right now.",
        idempotent=True,
    ),
)

BY_NAME: dict[str, Tool] = {tool.name: tool for tool in TOOLS}
