"""Retell custom-function requests: parse what arrives, render what we answer. Pure, no I/O.

Retell POSTs a custom function's call to the function's URL (docs: "Custom function"):

- by default `{"name", "call", "args"}`: `call` is Retell's call object (`PhoneCallResponse` /
  `WebCallResponse` in retell-sdk: `call_id`, `agent_id`, `call_type`, `direction`,
  `from_number`, `to_number`, `metadata`, `retell_llm_dynamic_variables`, the transcript, …)
  and `args` the arguments the LLM chose;
- with "Payload: args only" (`args_at_root`), just the arguments object. Nothing then says which
  call it is, so the function's headers carry it, filled by Retell: `X-Call-Id: {{call_id}}`,
  `X-Caller-Number: {{user_number}}`, and the agent as a fixed `X-Agent-Id`
  (`vapi-calendar retell-tools --args-at-root --agent-id …` writes them).

The tool is the one the URL names (an integrator may give the function another name in Retell).
Retell sends no id per function call, so one is derived from the call id, the tool and the
arguments: a retry (`max_retry`) is the same call and is answered once.

Whose calendar, first that names a user decides (the same rules as Vapi's):
1. `call.metadata.userId` — with `userToken` (CALL_METADATA_TRUST), set when the call was made;
2. `call.retell_llm_dynamic_variables.userId` — the same, as dynamic variables;
3. `call.agent_id` → `PUT /api/links/retell/{agentId}` (args only: `X-Agent-Id`);
4. the agent's own number (`to_number` of an inbound call, `from_number` of an outbound one) →
   `PUT /api/links/retell/phone-numbers/{number}`.
The caller is the other number (`from_number` inbound, `to_number` outbound); web calls have
no numbers.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from vapi_calendar.pipeline.calls import (
    Claim,
    IdentitySource,
    Link,
    ToolCall,
    ToolRequest,
    derived_call_id,
)
from vapi_calendar.server import fields
from vapi_calendar.tools.context import CallContext

CALL_ID_HEADER = "X-Call-Id"
CALLER_NUMBER_HEADER = "X-Caller-Number"
AGENT_ID_HEADER = "X-Agent-Id"
NON_OBJECT_ARGUMENTS = "The tool arguments were not a JSON object."
_MAX_HEADER = 128

# (label, path inside `call`) of the metadata that may name the user, in order.
CLAIMS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("call.metadata", ("metadata",)),
    ("call.retell_llm_dynamic_variables", ("retell_llm_dynamic_variables",)),
)


class MalformedRequest(ValueError):
    """The body cannot be understood. `str()` is a short, safe reason for a 400 response."""


def parse_function_call(tool: str, body: bytes, headers: Mapping[str, str]) -> ToolRequest:
    try:
        document = json.loads(body.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise MalformedRequest("body is not valid UTF-8") from None
    except (ValueError, RecursionError):
        raise MalformedRequest("body is not valid JSON") from None
    if not isinstance(document, dict):
        raise MalformedRequest("body must be a JSON object")
    # No tool argument is called `call`: a call object means the default payload (whose `args`
    # may be left out for a function without parameters).
    if isinstance(document.get("call"), dict):
        return _full_request(tool, document)
    return _args_only(tool, document, headers)


def _full_request(tool: str, document: dict[str, Any]) -> ToolRequest:
    call = document["call"]
    inbound = call.get("direction") != "outbound"
    from_number, to_number = (
        fields.text(call.get("from_number")),
        fields.text(call.get("to_number")),
    )
    agent_number, caller = (to_number, from_number) if inbound else (from_number, to_number)
    identity: list[IdentitySource] = []
    for label, path in CLAIMS:
        if (user_id := fields.user_id(fields.dig(call, *path, "userId"))) is not None:
            token = fields.text(fields.dig(call, *path, "userToken"))
            identity.append(Claim(label, user_id, token))
    if agent_id := fields.text(call.get("agent_id")):
        identity.append(Link("retell", "agent", agent_id, "call.agent_id"))
    if agent_number:
        label = "call.to_number" if inbound else "call.from_number"
        identity.append(Link("retell", "phoneNumber", agent_number, label))
    arguments = document.get("args")
    return _request(tool, fields.text(call.get("call_id")), caller, identity, arguments)


def _args_only(tool: str, document: dict[str, Any], headers: Mapping[str, str]) -> ToolRequest:
    identity: list[IdentitySource] = []
    if agent_id := _header(headers, AGENT_ID_HEADER):
        identity.append(Link("retell", "agent", agent_id, AGENT_ID_HEADER))
    return _request(
        tool,
        _header(headers, CALL_ID_HEADER),
        _header(headers, CALLER_NUMBER_HEADER),
        identity,
        document,
    )


def _request(
    tool: str,
    call_id: str | None,
    caller: str | None,
    identity: list[IdentitySource],
    arguments: Any,
) -> ToolRequest:
    if arguments is None:
        arguments = {}
    error = None if isinstance(arguments, dict) else NON_OBJECT_ARGUMENTS
    arguments = arguments if isinstance(arguments, dict) else {}
    tool_call_id = (
        derived_call_id("retell", call_id, tool, arguments)
        if call_id
        else f"retell-{uuid.uuid4().hex}"
    )
    return ToolRequest(
        platform="retell",
        call=CallContext(call_id=call_id, caller_number=caller),
        identity=tuple(identity),
        calls=(
            ToolCall(
                tool_call_id, tool, arguments, arguments_error=error, derived_id=bool(call_id)
            ),
        ),
    )


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = (headers.get(name) or "").strip()
    # Templates Retell could not fill arrive as written; they are no value.
    if not value or len(value) > _MAX_HEADER or value.startswith("{{"):
        return None
    return value
