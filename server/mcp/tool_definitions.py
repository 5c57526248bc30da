"""The Vapi MCP tool (`type: "mcp"`) that reaches this server's `/mcp`.

`vapi-calendar vapi-tools --mcp` prints it as a body for Vapi's `POST /tool`
(`CreateMcpToolDto` in Vapi's SDK): `server.url`, the user's API key as the `Authorization`
header (or a Vapi credential that sends it), `metadata.protocol: "shttp"` (Streamable HTTP), and
per-tool messages (`toolMessages`) from the tool table. One MCP tool per user: the key decides
whose calendar it is. Vapi adds `X-Call-Id` to every request during a call.
"""

from __future__ import annotations

from typing import Any

from vapi_calendar.server.mcp.endpoint import MCP_PATH
from vapi_calendar.server.tool_schemas import public_base_url
from vapi_calendar.tools.table import TOOLS

DEFAULT_TIMEOUT_SECONDS = 20


def mcp_url(server_url: str) -> str:
    return public_base_url(server_url, MCP_PATH) + MCP_PATH


def vapi_mcp_tool(
    server_url: str,
    *,
    api_key: str | None = None,
    credential_id: str | None = None,
    timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS,
) -> dict[str, Any]:
    server: dict[str, Any] = {"url": mcp_url(server_url), "timeoutSeconds": timeout_seconds}
    if api_key:
        server["headers"] = {"Authorization": f"Bearer {api_key}"}
    if credential_id:
        server["credentialId"] = credential_id
    return {
        "type": "mcp",
        "server": server,
        "metadata": {"protocol": "shttp"},
        "toolMessages": [
            {
                "name": tool.name,
                "messages": [
                    {"type": "request-start", "content": tool.start},
                    {
                        "type": "request-response-delayed",
                        "content": tool.delayed,
                        "timingMilliseconds": 4000,
                    },
                    {"type": "request-failed", "content": tool.failed},
                ],
            }
            for tool in TOOLS
        ],
    }
