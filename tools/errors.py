"""Domain errors: the one place where the sentences a caller hears are written.

Each error's message is exactly what the assistant can say. Transport and library failures are
translated into these once, at each adapter's boundary (`vapi_calendar.providers.google.errors`
for Google), so nothing above an adapter ever sees a vendor's exception.

Each error also has a `kind`, which tells a platform adapter how the caller should hear it:
`FIXABLE` when the caller can change what they asked (another time, another appointment, say
the date again) — the conversation goes on, so the assistant's model should phrase the sentence
and carry on; `FINAL` when nothing the caller says can fix it (the calendar must be reconnected,
is unreachable, is not linked, a bug) — the sentence is said as written. A subclass inherits its
parent's kind; the safe default is `FINAL`, which never hides the sentence.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar


class ErrorKind(StrEnum):
    FIXABLE = "fixable"  # the caller can fix it: the model phrases the sentence and goes on
    FINAL = "final"  # the caller cannot fix it: the sentence is said as written


class ToolError(Exception):
    """A tool call failed in a way the caller should hear about, in one sentence."""

    default_message = "Something went wrong with the calendar. Please try again."
    kind: ClassVar[ErrorKind] = ErrorKind.FINAL

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default_message)

    @property
    def message(self) -> str:
        return str(self.args[0])


class Unexpected(ToolError):
    """A bug: logged with its traceback, heard as the generic sentence."""


class InvalidArguments(ToolError):
    """Missing, unreadable or contradictory arguments: a past time, an unreadable date, …"""

    kind = ErrorKind.FIXABLE
    default_message = (
        "I could not understand the requested time. Please say the date and time again."
    )


class UnknownTool(ToolError):
    """The model called a tool that does not exist; it can pick another."""

    kind = ErrorKind.FIXABLE
    default_message = "That calendar action is not available."


class UserNotLinked(ToolError):
    default_message = (
        "This assistant is not linked to a user, so I cannot reach a calendar. "
        "Please contact the business directly."
    )


class CalendarNotConnected(ToolError):
    default_message = (
        "The calendar is not connected yet, so I cannot check or book times right now."
    )


class ReconnectRequired(ToolError):
    default_message = (
        "The calendar connection must be renewed by its owner before I can check or book times."
    )


class CalendarUnavailable(ToolError):
    default_message = "The calendar is not responding right now. Please try again in a moment."


class UserBusy(CalendarUnavailable):
    """More calls of one user in flight than its cap allows, for longer than a call may wait."""

    default_message = (
        "The calendar is handling too many requests at once. Please try again in a moment."
    )


class CalendarBusy(CalendarUnavailable):
    """Another booking held the calendar's lock for longer than a call may wait."""

    default_message = "The calendar is busy with another booking. Please try again in a moment."


class TooSlow(ToolError):
    """The call's time budget ran out."""

    default_message = "The calendar took too long to answer. Please try again in a moment."


class CalendarRejected(ToolError):
    default_message = "The calendar refused that request."


class EventNotFound(CalendarRejected):
    kind = ErrorKind.FIXABLE  # the caller can name another appointment, or look theirs up
    default_message = "I could not find that appointment."


class EventGone(ToolError):
    kind = ErrorKind.FIXABLE
    default_message = "That appointment no longer exists."


class InvalidStoredRules(ToolError):
    default_message = (
        "The calendar's booking rules are not valid, so I cannot book right now. "
        "Please contact the business directly."
    )
