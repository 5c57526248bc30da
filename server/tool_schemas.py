"""JSON-schema parameters of the tools, from the one tool table's argument models.

Every platform is told the same schema (Vapi's function tools and MCP tool, MCP's `inputSchema`,
Retell's custom functions), generated from the pydantic models the pipeline validates with, so
what the LLM is told and what the server accepts cannot drift apart. ElevenLabs' schema language
is narrower and has its own renderer (`server/elevenlabs/tool_definitions.py`).

With `strict`, the schemas follow OpenAI's Structured Outputs rules (see
`server/vapi/tool_definitions.py`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from vapi_calendar.tools.arguments import ToolArguments

# Vapi's JSON-schema type accepts only these keys (the subset every platform reads); bounds go
# into the description instead.
_SCHEMA_KEYS = ("type", "description", "format", "pattern", "enum", "items")


def _bounds(schema: dict[str, Any]) -> str:
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is not None and high is not None:
        return f" Between {low} and {high}."
    return ""


def _property(schema: dict[str, Any]) -> dict[str, Any]:
    """One pydantic property schema as Vapi's JsonSchema: optional → its type, no titles."""
    options = [s for s in schema.get("anyOf", []) if s.get("type") != "null"]
    inner = (
        {**options[0], **{k: v for k, v in schema.items() if k != "anyOf"}} if options else schema
    )
    out = {key: inner[key] for key in _SCHEMA_KEYS if key in inner}
    if "items" in out:
        out["items"] = _property(out["items"])
    if "description" in out:
        out["description"] += _bounds(inner)
    return out


def parameters(model: type[ToolArguments], *, strict: bool = False) -> dict[str, Any]:
    """The function's JSON-schema parameters, camelCase, from the argument model."""
    schema = model.model_json_schema(by_alias=True)
    properties = {name: _property(p) for name, p in schema["properties"].items()}
    required = list(schema.get("required", []))
    if not strict:
        return {"type": "object", "properties": properties, "required": required}
    for name, prop in properties.items():
        if name not in required:
            prop["type"] = [prop["type"], "null"]
    return _closed({"type": "object", "properties": properties, "required": list(properties)})


def _closed(schema: dict[str, Any]) -> dict[str, Any]:
    """`additionalProperties: false` on every object schema, nested ones included."""
    if "object" in (schema["type"] if isinstance(schema["type"], list) else [schema["type"]]):
        schema["additionalProperties"] = False
        for prop in schema.get("properties", {}).values():
            _closed(prop)
    if isinstance(schema.get("items"), dict):
        _closed(schema["items"])
    return schema


def public_base_url(server_url: str, *paths: str) -> str:
    """This server's base URL, given as such or as one of its endpoint URLs (`paths`)."""
    url = server_url.rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not an absolute URL: {server_url!r}")
    for path in paths:
        url = url.removesuffix(path)
    return url
