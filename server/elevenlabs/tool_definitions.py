"""ElevenLabs webhook-tool configurations, rendered from the one tool table.

`vapi-calendar elevenlabs-tools` prints one body per tool for ElevenLabs' `POST /v1/convai/tools`
(`ToolRequestModel` in the elevenlabs SDK: `tool_config` of type `webhook`); attach the returned
ids to the agent's `conversation_config.agent.prompt.tool_ids`.

ElevenLabs' schema language is narrower than JSON Schema (`LiteralJsonSchemaProperty`: a type
of string, integer, number or boolean, a description, an enum; arrays and objects nest): there
is no `format`, `pattern`, `minimum` or `maximum`, so bounds and formats go into the
description, as they do for Vapi. Each property sets exactly one source of its value: a
`description` (the LLM fills it) or a `dynamic_variable` (ElevenLabs fills it): the system
variables that say whose calendar and which call it is (`server/elevenlabs/protocol.py`) are
sent that way and are never the LLM's to choose.

The `Authorization` header comes from a workspace secret (its value: `Bearer
<ELEVENLABS_TOOL_SECRET>`), named by its id. `method` is always given: the API's default is GET.
"""

from __future__ import annotations

from typing import Any

from vapi_calendar.server.elevenlabs.protocol import SYSTEM_VARIABLES
from vapi_calendar.server.elevenlabs.tools import TOOLS_PATH
from vapi_calendar.server.tool_schemas import public_base_url
from vapi_calendar.tools.arguments import ToolArguments
from vapi_calendar.tools.table import TOOLS, Tool

# ElevenLabs: "Must be between 5 and 300 seconds"; the server answers within its budget.
DEFAULT_TIMEOUT_SECONDS = 20
_FORMATS = {"email": " An email address."}


def _property(schema: dict[str, Any]) -> dict[str, Any]:
    options = [s for s in schema.get("anyOf", []) if s.get("type") != "null"]
    inner = (
        {**options[0], **{k: v for k, v in schema.items() if k != "anyOf"}} if options else schema
    )
    description = inner.get("description", "")
    if (low := inner.get("minimum")) is not None and (high := inner.get("maximum")) is not None:
        description += f" Between {low} and {high}."
    description += _FORMATS.get(inner.get("format", ""), "")
    if inner["type"] == "array":
        items = _property(inner.get("items", {"type": "string"}))
        return {"type": "array", "description": description.strip(), "items": items}
    out: dict[str, Any] = {"type": inner["type"], "description": description.strip()}
    if "enum" in inner:
        out["enum"] = inner["enum"]
    return out


def request_body_schema(model: type[ToolArguments]) -> dict[str, Any]:
    """The tool's arguments, plus the system variables ElevenLabs fills in."""
    schema = model.model_json_schema(by_alias=True)
    properties = {name: _property(p) for name, p in schema["properties"].items()}
    for variable in SYSTEM_VARIABLES:
        properties[variable] = {"type": "string", "dynamic_variable": variable}
    return {
        "type": "object",
        "description": "The calendar action's arguments.",
        "required": list(schema.get("required", [])),
        "properties": properties,
    }


def tool_url(server_url: str, tool: Tool) -> str:
    base = public_base_url(server_url)
    if f"{TOOLS_PATH}/" in base:
        base = base[: base.index(f"{TOOLS_PATH}/")]
    return f"{base}{TOOLS_PATH}/{tool.name}"


def webhook_tool(
    tool: Tool,
    server_url: str,
    *,
    secret_id: str,
    timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS,
) -> dict[str, Any]:
    return {
        "tool_config": {
            "type": "webhook",
            "name": tool.name,
            "description": tool.description,
            "response_timeout_secs": timeout_seconds,
            "api_schema": {
                "url": tool_url(server_url, tool),
                "method": "POST",
                "content_type": "application/json",
                "request_headers": {"Authorization": {"secret_id": secret_id}},
                "request_body_schema": request_body_schema(tool.arguments),
            },
        }
    }


def elevenlabs_tools(
    server_url: str, *, secret_id: str, timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS
) -> dict[str, Any]:
    return {
        "tools": [
            webhook_tool(tool, server_url, secret_id=secret_id, timeout_seconds=timeout_seconds)
            for tool in TOOLS
        ]
    }
