"""Retell custom-function definitions, rendered from the one tool table.

`vapi-calendar retell-tools` prints them as `general_tools` for a Retell LLM
(`POST /create-retell-llm`, `PATCH /update-retell-llm/{id}`), each a `GeneralToolCustomTool`
of retell-sdk: `type: "custom"`, name, description, `url`, `method`, the JSON-schema
`parameters` every platform is told (`server/tool_schemas.py`), what to say while it runs
(`execution_message_description` as `static_text`) and `speak_after_execution` so the model
speaks the answer. No `max_retry`: Retell's default is no retry, and the server answers a retry
once anyway.
"""

from __future__ import annotations

from typing import Any

from vapi_calendar.server.retell.functions import FUNCTIONS_PATH
from vapi_calendar.server.retell.protocol import (
    AGENT_ID_HEADER,
    CALL_ID_HEADER,
    CALLER_NUMBER_HEADER,
)
from vapi_calendar.server.tool_schemas import parameters, public_base_url
from vapi_calendar.tools.table import TOOLS, Tool

# Retell's per-attempt timeout (`timeout_ms`, 1 s to 10 min; its default is 2 min): the server
# answers within TOOL_BUDGET_SECONDS, so 20 s means "the server is gone", not "slow".
DEFAULT_TIMEOUT_MS = 20_000


def function_url(server_url: str, tool: Tool) -> str:
    base = public_base_url(server_url)
    if f"{FUNCTIONS_PATH}/" in base:
        base = base[: base.index(f"{FUNCTIONS_PATH}/")]
    return f"{base}{FUNCTIONS_PATH}/{tool.name}"


def custom_function(
    tool: Tool,
    server_url: str,
    *,
    args_at_root: bool = False,
    agent_id: str | None = None,
    timeout_ms: int = DEFAULT_TIMEOUT_MS,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "custom",
        "name": tool.name,
        "description": tool.description,
        "url": function_url(server_url, tool),
        "method": "POST",
        "parameters": parameters(tool.arguments),
        "speak_during_execution": True,
        "execution_message_description": tool.start,
        "execution_message_type": "static_text",
        "speak_after_execution": True,
        "timeout_ms": timeout_ms,
        "args_at_root": args_at_root,
    }
    if args_at_root:
        # The body is then only the arguments: Retell fills these headers for each call.
        headers = {CALL_ID_HEADER: "{{call_id}}", CALLER_NUMBER_HEADER: "{{user_number}}"}
        if agent_id:
            headers[AGENT_ID_HEADER] = agent_id
        body["headers"] = headers
    return body


def prompt(timezone: str) -> str:
    """A snippet for the Retell LLM's general prompt (Retell fills `{{current_time_<zone>}}`)."""
    return "\n".join(
        [
            f"It is now {{{{current_time_{timezone}}}}}.",
            "Calendar tools:",
            f"- Send times as local {timezone} wall time without an offset or Z, for example "
            "2031-03-11T14:00:00. If the caller speaks about another time zone, pass it as "
            "timeZone (an IANA name such as America/Chicago).",
            "- Check availability before offering times; offer only times the tools return.",
            "- Before booking, moving or cancelling, read back the day, date and time (the "
            "'spoken' text from the tool) and wait for a clear yes.",
            "- To change or cancel, call findAppointments first and use the eventId of the "
            "appointment the caller confirms.",
            "- Each tool answers JSON: say its short message in your own words. If it has an "
            "error, follow its instruction; never read out ids or ISO times.",
        ]
    )


def retell_tools(
    server_url: str,
    *,
    timezone: str = "UTC",
    args_at_root: bool = False,
    agent_id: str | None = None,
    timeout_ms: int = DEFAULT_TIMEOUT_MS,
) -> dict[str, Any]:
    return {
        "general_tools": [
            custom_function(
                tool,
                server_url,
                args_at_root=args_at_root,
                agent_id=agent_id,
                timeout_ms=timeout_ms,
            )
            for tool in TOOLS
        ],
        "general_prompt": prompt(timezone),
    }
