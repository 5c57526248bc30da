"""Domain errors. Each message is exactly what the assistant can say to the caller.

Transport and library failures are translated into these once, at the boundary
(`tools.google_calendar`), so tool code never sees an `HttpError` or a `RefreshError`.
"""

from __future__ import annotations


class ToolError(Exception):
    """A tool call failed in a way the caller should hear about, in one sentence."""

    default_message = "Something went wrong with the calendar. Please try again."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default_message)

    @property
    def message(self) -> str:
        return str(self.args[0])


class InvalidArguments(ToolError):
    default_message = (
        "I could not understand the requested time. Please say the date and time again."
    )


class UnknownTool(ToolError):
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


class CalendarRejected(ToolError):
    default_message = "The calendar refused that request."
