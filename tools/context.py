"""What a tool receives: the resolved user, their calendar, and the call it serves."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from vapi_calendar.ports.calendar import CalendarProvider
from vapi_calendar.ports.locks import Locks
from vapi_calendar.ports.stores import User


@dataclass(frozen=True, slots=True)
class CallContext:
    """What the voice platform (never the LLM) says about the call a tool serves."""

    call_id: str | None = None
    caller_number: str | None = None  # the number the caller calls from, when known


class Answers(Protocol):
    """This tool call's answer record: one answer per tool call id, however often it arrives."""

    async def recorded(self) -> dict[str, Any] | None:
        """The answer an earlier delivery of this call stored, if any."""
        ...

    async def record(self, answer: dict[str, Any]) -> dict[str, Any]:
        """Store `answer` unless one is stored already (first writer wins); the stored one."""
        ...

    async def first_attempt(self) -> bool:
        """True only for the first delivery of this call to get this far."""
        ...


@dataclass(frozen=True, slots=True)
class ToolContext:
    user: User
    calendar: CalendarProvider
    locks: Locks
    answers: Answers
    call: CallContext
    tool_call_id: str
    now: datetime  # aware UTC, fixed for the whole call

    @property
    def user_tz(self) -> ZoneInfo:
        return ZoneInfo(self.user.timezone)
