"""Vapi tool definitions, rendered from the one tool table (`vapi_calendar.tools.table`).

`vapi-calendar vapi-tools` prints these as bodies for Vapi's `POST /tool`. The JSON-schema
parameters are generated from the same pydantic models the pipeline validates arguments with,
so what the LLM is told and what the server accepts cannot drift apart.

With `strict`, the schemas follow OpenAI's Structured Outputs rules, which apply when Vapi
passes `function.strict: true` on (Vapi's `OpenAIFunction.strict`: "Only a subset of JSON
Schema is supported when strict is true"): every property is required, an optional one is
nullable (`"type": [T, "null"]`), and every object has `additionalProperties: false`. The
server reads `null` as "not given" (`tools.arguments`), so both forms mean the same.

Each tool keeps a tool-level `request-failed` message: Vapi says it when this server cannot be
reached at all (down, too slow for `timeoutSeconds`, a non-200). Every error this server answers
carries its own `request-failed` message, which Vapi prefers to the tool's (`ToolCallResult.
error`), so the generic line never hides a specific sentence (`protocol.spoken_failure`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from vapi_calendar.server.tool_schemas import parameters
from vapi_calendar.tools.table import TOOLS, Tool

__all__ = ["parameters", "system_prompt", "tool_body", "vapi_tools", "webhook_url"]

WEBHOOK_PATH = "/vapi/webhook"
# Vapi's default; the server answers within TOOL_BUDGET_SECONDS (10 s by default), well below.
DEFAULT_TIMEOUT_SECONDS = 20


def webhook_url(server_url: str) -> str:
    """Accept the server's base URL or the full webhook URL."""
    url = server_url.rstrip("/")
    if not urlsplit(url).scheme or not urlsplit(url).netloc:
        raise ValueError(f"not an absolute URL: {server_url!r}")
    return url if url.endswith(WEBHOOK_PATH) else url + WEBHOOK_PATH


def base_url(server_url: str) -> str:
    """The server's base URL, whether given as such or as the webhook URL."""
    return webhook_url(server_url).removesuffix(WEBHOOK_PATH)


def tool_body(
    spec: Tool,
    server_url: str,
    *,
    credential_id: str | None = None,
    timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS,
    strict: bool = False,
) -> dict[str, Any]:
    """The JSON body for Vapi's POST /tool."""
    server: dict[str, Any] = {"url": webhook_url(server_url), "timeoutSeconds": timeout_seconds}
    if credential_id:
        server["credentialId"] = credential_id
    function: dict[str, Any] = {
        "name": spec.name,
        "description": spec.description,
        "parameters": parameters(spec.arguments, strict=strict),
    }
    if strict:
        function["strict"] = True
    return {
        "type": "function",
        "async": False,
        "function": function,
        "server": server,
        "messages": [
            {"type": "request-start", "content": spec.start},
            {
                "type": "request-response-delayed",
                "content": spec.delayed,
                "timingMilliseconds": 4000,
            },
            {"type": "request-failed", "content": spec.failed},
        ],
    }


def system_prompt(timezone: str) -> str:
    """A snippet for the assistant's system prompt: today's date in the business's zone (Vapi
    renders the Liquid `date` filter per call) and how to use the tools."""
    now = '{{"now" | date: "%A, %B %d, %Y, %I:%M %p", "' + timezone + '"}}'
    return "\n".join(
        [
            f"It is now {now} ({timezone} time).",
            "Calendar tools:",
            f"- Send times as local {timezone} wall time without an offset or Z, for example "
            "2031-03-11T14:00:00. If the caller speaks about another time zone, pass it as "
            "timeZone (an IANA name such as America/Chicago).",
            "- Check availability before offering times; offer only times the tools return, "
            "at most three at once.",
            "- Before booking, moving or cancelling, read back the day, date, time and time "
            "zone (the 'spoken' text from the tool) and wait for a clear yes.",
            "- To change or cancel, call findAppointments first and use the eventId of the "
            "appointment the caller confirms.",
            "- Say the tool's short message in your own words; never read out ids or ISO times.",
        ]
    )


def vapi_tools(
    server_url: str,
    *,
    credential_id: str | None = None,
    timezone: str = "UTC",
    timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS,
    strict: bool = False,
) -> dict[str, Any]:
    return {
        "tools": [
            tool_body(
                spec,
                server_url,
                credential_id=credential_id,
                timeout_seconds=timeout_seconds,
                strict=strict,
            )
            for spec in TOOLS
        ],
        "systemPrompt": system_prompt(timezone),
    }
