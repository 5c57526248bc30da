"""What a tool receives: the resolved user, their calendar, and the call it serves."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel

from server.store import Store, User
from server.vapi import CallInfo
from tools.errors import InvalidArguments
from tools.google_calendar import UserCalendar


@dataclass(frozen=True, slots=True)
class ToolContext:
    user: User
    calendar: UserCalendar
    store: Store
    call: CallInfo
    tool_call_id: str
    now: datetime  # aware UTC, fixed for the whole call
    # How long a booking lock outlives a crashed holder (BOOKING_LEASE_SECONDS); None = default.
    booking_lease_seconds: float | None = None

    @property
    def user_tz(self) -> ZoneInfo:
        return ZoneInfo(self.user.timezone)


class ToolArguments(BaseModel):
    """Tool arguments as the LLM sends them (camelCase, unknown keys ignored)."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", str_strip_whitespace=True
    )


A = TypeVar("A", bound=ToolArguments)


def parse_arguments(model: type[A], arguments: dict[str, Any]) -> A:
    """Validate, turning the first problem into a sentence the assistant can act on."""
    try:
        return model.model_validate(arguments)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"]) or "arguments"
        if error["type"] == "missing":
            raise InvalidArguments(f"I need {field} to do that.") from None
        raise InvalidArguments(f"The value for {field} is not valid: {error['msg']}.") from None
