"""What the caller hears when a tool call fails, over real HTTP and validated with Vapi's SDK.

Every error answer carries its own `request-failed` message, which Vapi prefers to the tool's
generic one: a caller-fixable refusal as a `role: "system"` hint the model phrases, anything
else said exactly as written. And arguments in strict-mode form (`null` for "not given") work.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from vapi.types import ServerMessageResponseToolCalls, ToolCallResultSpokenMessage_RequestFailed

from tests.harness.app import App, tool_calls_message
from tests.harness.vapi import unknown_keys

DAY = "2031-03-18"


def failure(app: App, name: str, arguments: dict[str, Any], **kwargs: Any) -> tuple[str, Any]:
    """The one result's error and its spoken message, checked against the SDK."""
    response = app.webhook(tool_calls_message([("call_heard", name, arguments)], **kwargs))
    assert response.status_code == 200
    answer = ServerMessageResponseToolCalls.model_validate(response.json())
    assert not unknown_keys(answer)
    assert answer.results is not None
    (result,) = answer.results
    assert result.result is None and result.error is not None
    assert isinstance(result.message, ToolCallResultSpokenMessage_RequestFailed)
    assert result.message.content == result.error
    return result.error, result.message.role


@pytest.mark.parametrize(
    ("name", "arguments", "sentence"),
    [
        (
            "scheduleAppointment",
            {"startDateTime": "2026-11-30T10:00:00"},
            "That time has already passed",
        ),
        ("checkAvailability", {"startDateTime": "next tuesday"}, "startDateTime"),
        ("checkAvailability", {"startDateTime": None}, "I need startDateTime"),
        ("cancelAppointment", {"eventId": "not-one-of-ours"}, "I could not find that appointment"),
        ("bookFlight", {}, "is not available"),
    ],
    ids=["past-time", "unreadable-date", "null-required", "unknown-appointment", "unknown-tool"],
)
def test_caller_fixable_refusals_reach_the_model(
    app: App, name: str, arguments: dict[str, Any], sentence: str
) -> None:
    error, role = failure(app, name, arguments)
    assert sentence in error
    assert role == "system"  # the model phrases it and the conversation goes on


def test_an_unlinked_assistant_is_said_as_written(app: App) -> None:
    error, role = failure(
        app, "checkAvailability", {"startDateTime": f"{DAY}T09:00:00"}, assistant_id="asst_x"
    )
    assert error.startswith("This assistant is not linked to a user")
    assert role is None


def test_a_grant_that_needs_renewing_is_said_as_written(app: App) -> None:
    app.emulator.control.revoke_grants("ana@example.com")
    app.emulator.control.expire_access_tokens("ana@example.com")
    error, role = failure(app, "checkAvailability", {"startDateTime": f"{DAY}T09:00:00"})
    assert error.startswith("The calendar connection must be renewed by its owner")
    assert role is None


def test_a_calendar_refusal_is_said_as_written(app: App) -> None:
    app.emulator.control.add_fault("freebusy", 400, times=1)
    error, role = failure(app, "checkAvailability", {"startDateTime": f"{DAY}T09:00:00"})
    assert error == "The calendar refused that request."
    assert role is None


def test_strict_mode_arguments_with_nulls_book(app: App) -> None:
    strict = {
        "startDateTime": f"{DAY}T10:00:00",
        "endDateTime": None,
        "durationMinutes": None,
        "summary": None,
        "attendees": None,
        "attendeeName": "Sam Lee",
        "attendeePhone": None,
        "description": None,
        "timeZone": None,
    }
    booked = app.call_tool("scheduleAppointment", strict, call={"customer": {"number": "+1415"}})
    assert booked["booked"] is True
    assert booked["start"] == f"{DAY}T10:00:00-04:00"
    (event,) = app.emulator.control.events("ana@example.com")
    assert event["summary"] == "Appointment"  # null summary = not given = the default
    found = app.call_tool(
        "findAppointments",
        {"attendeePhone": None, "attendeeEmail": None, "startDateTime": None, "endDateTime": None},
        call={"customer": {"number": "+1415"}},
    )
    assert json.dumps(found).count(booked["eventId"]) == 1
