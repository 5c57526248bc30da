"""Answers for platforms whose model speaks every answer itself: Retell, ElevenLabs, MCP.

Vapi can make the caller hear a sentence exactly as written (a `request-failed` message, see
`server/vapi/protocol.py`). Retell's custom functions, ElevenLabs' webhook tools and MCP tools
have no such channel: whatever the server answers goes to the LLM as text, and the LLM speaks.
So every answer is a JSON object written for the model:

- a result is the tool's own answer, unchanged (the same object Vapi gets as a string), with
  its short `message` to say;
- a failure is `{"error": <the sentence from tools/errors.py>, "callerCanFix": <bool>,
  "instruction": <how to say it>}`: a sentence the caller cannot act on (the calendar must be
  reconnected, is unreachable, is not linked) is to be said word for word; one the caller can
  act on (another time, say the date again) is to be put in the model's own words.

Always with a success status: Retell and ElevenLabs hide or retry non-2xx answers, and the
sentence would be lost.
"""

from __future__ import annotations

import json
from typing import Any

from vapi_calendar.pipeline.calls import ToolOutcome
from vapi_calendar.tools.errors import ErrorKind, ToolError

SAY_AS_WRITTEN = "Tell the caller exactly this sentence, word for word, and do not retry now."
SAY_IN_OWN_WORDS = (
    "Explain this to the caller in your own words and ask for what is needed, then call the "
    "tool again with the corrected details."
)


def error_answer(error: ToolError) -> dict[str, Any]:
    fixable = error.kind is ErrorKind.FIXABLE
    return {
        "error": error.message,
        "callerCanFix": fixable,
        "instruction": SAY_IN_OWN_WORDS if fixable else SAY_AS_WRITTEN,
    }


def answer(outcome: ToolOutcome) -> dict[str, Any]:
    if outcome.error is not None:
        return error_answer(outcome.error)
    return outcome.result or {}


def answer_text(answer: dict[str, Any]) -> str:
    """Compact, single-line JSON (what a platform hands the model as the tool's result)."""
    return json.dumps(answer, separators=(",", ":"), ensure_ascii=False)
