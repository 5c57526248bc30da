"""What the model hears on platforms whose model speaks every answer (Retell, ElevenLabs, MCP)."""

from __future__ import annotations

from vapi_calendar.pipeline.calls import ToolOutcome
from vapi_calendar.server.model_answers import (
    SAY_AS_WRITTEN,
    SAY_IN_OWN_WORDS,
    answer,
    answer_text,
)
from vapi_calendar.tools.errors import CalendarNotConnected, InvalidArguments


def test_a_result_is_the_tools_own_answer() -> None:
    result = {"available": True, "message": "Tuesday at 9 is free."}
    assert answer(ToolOutcome("c1", "checkAvailability", result=result)) == result


def test_a_final_error_is_to_be_said_word_for_word() -> None:
    outcome = ToolOutcome("c1", "checkAvailability", error=CalendarNotConnected())
    assert answer(outcome) == {
        "error": CalendarNotConnected().message,
        "callerCanFix": False,
        "instruction": SAY_AS_WRITTEN,
    }


def test_an_error_the_caller_can_fix_is_said_in_the_models_words() -> None:
    error = InvalidArguments("That time has already passed. Please choose a later time.")
    body = answer(ToolOutcome("c1", "scheduleAppointment", error=error))
    assert body["callerCanFix"] is True and body["instruction"] == SAY_IN_OWN_WORDS
    assert body["error"] == error.message


def test_the_text_is_one_compact_line() -> None:
    text = answer_text({"error": "Line one.\nLine two.", "n": "é"})
    assert "\n" not in text and ", " not in text and "é" in text
