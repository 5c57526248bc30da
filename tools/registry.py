"""The tools this server answers, by Vapi function name."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from tools.availability import check_availability
from tools.booking import schedule_appointment
from tools.cancel import cancel_appointment
from tools.context import ToolContext
from tools.find import find_appointments
from tools.reschedule import reschedule_appointment

ToolHandler = Callable[[ToolContext, dict[str, Any]], Awaitable[dict[str, Any]]]

TOOLS: dict[str, ToolHandler] = {
    "checkAvailability": check_availability,
    "scheduleAppointment": schedule_appointment,
    "findAppointments": find_appointments,
    "rescheduleAppointment": reschedule_appointment,
    "cancelAppointment": cancel_appointment,
}
