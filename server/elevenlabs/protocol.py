"""ElevenLabs webhook-tool requests: parse what arrives. Pure, no I/O.

An ElevenLabs webhook tool sends exactly the JSON object its `request_body_schema` declares
(no wrapper, no conversation object, no tool name). The properties the LLM fills are the tool's
arguments; the tool definitions this server prints (`vapi-calendar elevenlabs-tools`) add
properties ElevenLabs fills itself from system dynamic variables (`dynamic_variable`), named
after them:

- `system__agent_id` (the agent that started the conversation): the link
  `PUT /api/links/elevenlabs/{agentId}`;
- `system__called_number` (the destination number of a voice call): the link
  `PUT /api/links/elevenlabs/phone-numbers/{number}`;
- `system__caller_id` (the caller's number, voice calls): the caller (`appointmentAccess`);
- `system__conversation_id` (ElevenLabs' unique conversation id): the call id;
- `system__call_sid` (Twilio's call SID, Twilio calls): the call id without a conversation id.

Values the LLM could set never decide whose calendar it is: a `system__` property is filled by
ElevenLabs (`dynamic_variable` properties are not shown to the LLM), and the request itself is
authenticated by the tool's secret header. ElevenLabs sends no id per tool call either, so one
is derived from the conversation, the tool and the arguments.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from vapi_calendar.pipeline.calls import (
    IdentitySource,
    Link,
    ToolCall,
    ToolRequest,
    derived_call_id,
)
from vapi_calendar.server import fields
from vapi_calendar.tools.context import CallContext

SYSTEM_PREFIX = "system__"
# The system dynamic variables the printed tools send, in the body under their own names.
SYSTEM_VARIABLES = (
    "system__agent_id",
    "system__called_number",
    "system__caller_id",
    "system__conversation_id",
    "system__call_sid",
)
INVALID_BODY = "The tool arguments were not valid JSON."
NON_OBJECT_BODY = "The tool arguments were not a JSON object."


def parse_tool_call(tool: str, body: bytes) -> ToolRequest:
    """Never raises: a body that cannot be read becomes a sentence for the agent (ElevenLabs
    hides non-2xx answers from it)."""
    error: str | None = None
    try:
        document: Any = json.loads(body.decode("utf-8-sig")) if body.strip() else {}
    except (UnicodeDecodeError, ValueError, RecursionError):
        document, error = {}, INVALID_BODY
    if not isinstance(document, dict):
        document, error = {}, error or NON_OBJECT_BODY
    system = {k: fields.text(v) for k, v in document.items() if k.startswith(SYSTEM_PREFIX)}
    arguments = {k: v for k, v in document.items() if not k.startswith(SYSTEM_PREFIX)}
    identity: list[IdentitySource] = []
    if agent_id := system.get("system__agent_id"):
        identity.append(Link("elevenlabs", "agent", agent_id, "system__agent_id"))
    if called := system.get("system__called_number"):
        identity.append(Link("elevenlabs", "phoneNumber", called, "system__called_number"))
    call_id = system.get("system__conversation_id") or system.get("system__call_sid")
    tool_call_id = (
        derived_call_id("elevenlabs", call_id, tool, arguments)
        if call_id
        else f"elevenlabs-{uuid.uuid4().hex}"
    )
    return ToolRequest(
        platform="elevenlabs",
        call=CallContext(call_id=call_id, caller_number=system.get("system__caller_id")),
        identity=tuple(identity),
        calls=(
            ToolCall(
                tool_call_id, tool, arguments, arguments_error=error, derived_id=bool(call_id)
            ),
        ),
    )
