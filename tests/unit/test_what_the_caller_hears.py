"""What the caller hears for every failure: the error's own sentence, never the tool's generic line.

Vapi's `ToolCallResult.error` contract: the caller hears (1) the result's own `message` of type
`request-failed`, else (2) the tool's `request-failed` message, else (3) the model's reply. Every
error answer therefore carries its own `message`; caller-fixable ones as a `role: "system"` hint
the model phrases, the others spoken as written. Each answer is validated with Vapi's SDK.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from vapi.types import (
    ServerMessageResponseToolCalls,
    ToolCallResultSpokenMessage_RequestFailed,
)

from tests.harness.vapi import unknown_keys
from vapi_calendar.pipeline.calls import ToolOutcome
from vapi_calendar.server.vapi.protocol import render_results
from vapi_calendar.tools import errors
from vapi_calendar.tools.errors import ErrorKind, ToolError

README = Path(__file__).resolve().parent.parent.parent / "README.md"


def every_error_class() -> list[type[ToolError]]:
    found: list[type[ToolError]] = []
    pending: list[type[ToolError]] = [ToolError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending += cls.__subclasses__()
    return sorted(set(found), key=lambda cls: cls.__name__)


ERROR_CLASSES = every_error_class()

# The deliberate classification of the errors this module knows; a new error class inherits
# its parent's kind and is checked by every other test here.
EXPECTED_KIND = {
    "ToolError": ErrorKind.FINAL,
    "Unexpected": ErrorKind.FINAL,
    "InvalidArguments": ErrorKind.FIXABLE,
    "UnknownTool": ErrorKind.FIXABLE,
    "UserNotLinked": ErrorKind.FINAL,
    "CalendarNotConnected": ErrorKind.FINAL,
    "ReconnectRequired": ErrorKind.FINAL,
    "CalendarUnavailable": ErrorKind.FINAL,
    "UserBusy": ErrorKind.FINAL,
    "CalendarBusy": ErrorKind.FINAL,
    "TooSlow": ErrorKind.FINAL,
    "CalendarRejected": ErrorKind.FINAL,
    "EventNotFound": ErrorKind.FIXABLE,
    "EventGone": ErrorKind.FIXABLE,
    "InvalidStoredRules": ErrorKind.FINAL,
}


def answer(*errors_: ToolError) -> tuple[dict[str, Any], ServerMessageResponseToolCalls]:
    outcomes = [
        ToolOutcome(f"call_{index}", "scheduleAppointment", error=error)
        for index, error in enumerate(errors_)
    ]
    wire = json.loads(json.dumps(render_results(outcomes)))
    return wire, ServerMessageResponseToolCalls.model_validate(wire)


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda cls: cls.__name__)
def test_every_error_class_is_heard_as_its_own_sentence(cls: type[ToolError]) -> None:
    error = cls()
    wire, response = answer(error)
    assert not unknown_keys(response)
    assert response.results is not None
    [result] = response.results
    assert result.error == error.message
    assert isinstance(result.message, ToolCallResultSpokenMessage_RequestFailed)
    assert result.message.content == error.message
    if cls.kind is ErrorKind.FIXABLE:
        # A hint: the model writes the reply from it and the conversation goes on.
        assert result.message.role == "system"
    else:
        # Said as written; `role` left out, so it is "assistant" (Vapi's default) everywhere.
        assert result.message.role is None and "role" not in wire["results"][0]["message"]


def test_the_known_errors_are_classified_deliberately() -> None:
    kinds = {cls.__name__: cls.kind for cls in ERROR_CLASSES if cls.__name__ in EXPECTED_KIND}
    assert kinds == EXPECTED_KIND


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda cls: cls.__name__)
def test_every_error_class_is_in_the_readme_table(cls: type[ToolError]) -> None:
    assert f"| `{cls.__name__}` |" in README.read_text()


@pytest.mark.parametrize(
    ("error", "role"),
    [
        (
            errors.InvalidArguments("That time has already passed. Please choose a later time."),
            "system",
        ),
        (errors.InvalidArguments("I could not read startDateTime as a date and time."), "system"),
        (errors.EventNotFound("That appointment was cancelled, so it cannot be moved."), "system"),
        (errors.CalendarRejected("I could not read that calendar's availability."), None),
        (errors.UserNotLinked("This assistant is linked to a user that does not exist."), None),
    ],
)
def test_a_specific_sentence_is_kept(error: ToolError, role: str | None) -> None:
    _, response = answer(error)
    assert response.results is not None
    message = response.results[0].message
    assert message is not None and (message.content, message.role) == (error.message, role)


def test_several_errors_and_results_in_one_answer_each_keep_their_own() -> None:
    outcomes = [
        ToolOutcome("c1", "checkAvailability", result={"available": True}),
        ToolOutcome("c2", "cancelAppointment", error=errors.EventNotFound()),
        ToolOutcome("c3", "scheduleAppointment", error=errors.ReconnectRequired()),
    ]
    wire = json.loads(json.dumps(render_results(outcomes)))
    response = ServerMessageResponseToolCalls.model_validate(wire)
    assert response.results is not None
    first, second, third = response.results
    assert first.message is None and first.result == '{"available":true}'
    assert second.message is not None and second.message.role == "system"
    assert third.message is not None and third.message.role is None
    assert third.message.content == errors.ReconnectRequired.default_message


def test_the_spoken_message_is_one_line_and_within_vapis_limit() -> None:
    long = errors.InvalidArguments("line one\nline two " + "x" * 2000)
    wire, response = answer(long)
    content = wire["results"][0]["message"]["content"]
    assert "\n" not in content and content.startswith("line one line two")
    assert len(content) == 1000  # ToolMessageFailed.content: maxLength 1000
    assert response.results is not None and response.results[0].error is not None
    assert "\n" not in response.results[0].error
