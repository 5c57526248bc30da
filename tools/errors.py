"""Domain errors: the one place where the sentences a caller hears are written.

Each error's message is exactly what the assistant can say. Transport and library failures are
translated into these once, at each adapter's boundary (`vapi_calendar.providers.google.errors`
for Google, `vapi_calendar.providers.microsoft.errors` for Microsoft 365), so nothing above an
adapter ever sees a vendor's exception.

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


# -- Refusals a retry cannot fix (Google's 403/404 reasons, per-calendar read errors, setup) ---


class CalendarNotFound(CalendarRejected):
    """The calendar itself (not an appointment) does not exist or is not shared with the owner."""

    default_message = (
        "I could not find the calendar to use, so I cannot check or book times. "
        "Please contact the business directly."
    )


class BookingCalendarUnreadable(CalendarRejected):
    """The calendar appointments go into answered freeBusy with an error: its busy time is
    unknown, so booking into it could double-book."""

    default_message = (
        "I cannot read the calendar appointments are booked into, so I cannot check or book "
        "times right now. Please contact the business directly."
    )


class CalendarAccessDenied(CalendarRejected):
    """The owner's account lacks the access level the operation needs (writer, reader)."""

    default_message = (
        "This calendar does not let me change appointments, so I cannot do that. "
        "Please contact the business directly."
    )
    reading_message = (
        "This calendar does not let me read its appointments, so I cannot do that. "
        "Please contact the business directly."
    )


class OrganizerOnly(CalendarRejected):
    """Only the event's organizer may change it."""

    default_message = (
        "Only the organizer of that appointment can change it, so I cannot do that. "
        "Please contact the business directly."
    )


class UsageLimitReached(CalendarRejected):
    """A usage limit of the calendar provider (e.g. too many invitations sent): retrying within
    the call cannot help."""

    default_message = (
        "The calendar has reached a Google usage limit, so I cannot do that right now. "
        "Please contact the business directly."
    )
    microsoft_message = (
        "The calendar has reached a Microsoft usage limit, so I cannot do that right now. "
        "Please contact the business directly."
    )


class BookingCancelled(ToolError):
    """The event this very tool call booked has been cancelled since (a redelivered call): the
    caller can simply book the time again."""

    kind = ErrorKind.FIXABLE
    default_message = "That booking was cancelled in the meantime. Please book the time again."


class ServiceMisconfigured(ToolError):
    """The deployment's own credentials were refused (e.g. the OAuth client): neither the caller
    nor the calendar owner can fix it, and retrying will not help until the operator does.

    `cause` is the provider's word for it, `fix` names what the operator must change; neither
    is ever spoken."""

    default_message = (
        "The calendar service is not set up correctly, so I cannot check or book times. "
        "Please contact the business directly."
    )

    def __init__(
        self, message: str | None = None, *, cause: str = "unknown", fix: str = ""
    ) -> None:
        super().__init__(message)
        self.cause = cause
        self.fix = fix
