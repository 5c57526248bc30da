"""MCP (Streamable HTTP) at `/mcp`: the five tools for Vapi's MCP tool, ElevenLabs, Retell and
desktop clients, through the same pipeline as every platform.

- **The official SDK** (`mcp` 2.x) speaks the protocol: its low-level `Server` lists the tools
  with our own JSON schemas (`server/tool_schemas.py`, the ones Vapi's function tools get; the
  high-level `MCPServer` derives schemas from Python signatures instead) and its session manager
  serves Streamable HTTP. Stateless, JSON answers: Vapi opens a new connection for every tool
  call ("Each time the model invokes a specific MCP tool, Vapi creates a new connection"), so no
  `Mcp-Session-Id` is kept, and any replica can answer any request.
- **The API key alone decides the user**: `Authorization: Bearer <key>` is checked here, before
  the SDK sees the request; anything else is 401 and nothing runs. No OAuth metadata is
  advertised (a client that sees it ignores a static Authorization header).
- **The call** is named by headers: `MCP_CALL_ID_HEADER` (`X-Call-Id`, which Vapi's MCP tool
  sends during calls) and `MCP_CALLER_NUMBER_HEADER` (set up by the integrator, e.g. an
  ElevenLabs header from `system__caller_id`). MCP has no tool call id, so one is derived from
  the call id, the tool and the arguments (`pipeline.calls.derived_call_id`): a retried call is
  answered once. Without a call id every request is new.
- **Answers** are one text content holding the JSON of `server/model_answers.py` (the same
  object as `structuredContent`), never `isError`: a failure is a sentence for the model to say,
  not a protocol fault that a client would replace with its own words.

The SDK's DNS-rebinding check (a `Host` allow-list, on by default) protects servers on
localhost without credentials from web pages; every request here needs a key that no web page
has, and a real deployment's Host would be refused (421), so it is off. GET (an SSE stream that
a stateless server never writes to) is not offered: 405.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Mapping
from functools import cache
from typing import Any

from mcp import types
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from vapi_calendar.pipeline.calls import (
    Authenticated,
    ToolCall,
    ToolRequest,
    derived_call_id,
)
from vapi_calendar.server.http import json_error
from vapi_calendar.server.model_answers import answer, answer_text
from vapi_calendar.server.tool_schemas import parameters
from vapi_calendar.support.bearer import bearer_token
from vapi_calendar.tools.context import CallContext
from vapi_calendar.tools.table import TOOLS

log = logging.getLogger(__name__)

MCP_PATH = "/mcp"
SERVER_NAME = "vapi-calendar"
_USER_STATE = "mcp_user_id"
# Header values longer than this are not a call id or a phone number; they are ignored rather
# than written into calendar events.
_MAX_CALL_ID = 128
_MAX_NUMBER = 40
INSTRUCTIONS = (
    "Calendar tools for one business's own calendar: check availability before offering "
    "times, book only a time the caller confirmed, find appointments before moving or "
    "cancelling them. Send local times without an offset, e.g. 2031-03-11T14:00:00. Every "
    "answer is JSON: say its short message; on an error, follow its instruction."
)


@cache
def tool_list() -> list[types.Tool]:
    """The tools as MCP lists them: the same names, descriptions and JSON schemas as Vapi's.

    Built once: pydantic's schema generation takes ~5 ms of the event loop, and a client lists
    the tools at the start of every session. The list is shared, not to be changed."""
    return [
        types.Tool(name=t.name, description=t.description, input_schema=parameters(t.arguments))
        for t in TOOLS
    ]


def _header(headers: Mapping[str, str], name: str, limit: int) -> str | None:
    value = (headers.get(name) or "").strip()
    return value if value and len(value) <= limit else None


class McpEndpoint:
    """The ASGI app of `Route("/mcp")`; `run()` belongs in the app's lifespan (the SDK's session
    manager runs there, once per app)."""

    def __init__(self, *, max_body_bytes: int) -> None:
        self.server: Server[Any] = Server(
            SERVER_NAME,
            instructions=INSTRUCTIONS,
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
        )
        self._manager = StreamableHTTPSessionManager(
            app=self.server,
            stateless=True,
            json_response=True,
            security_settings=TransportSecuritySettings(enable_dns_rebinding_protection=False),
            max_request_body_size=max_body_bytes,
        )

    @contextlib.asynccontextmanager
    async def run(self) -> AsyncIterator[None]:
        async with self._manager.run():
            yield

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope)
        services = request.app.state.services
        key = bearer_token(request.headers.get("authorization"))
        user_id = await services.api_keys.owner(key) if key else None
        if user_id is None:
            response = json_error(401, "unauthorized: a valid API key is required")
            response.headers["WWW-Authenticate"] = "Bearer"
            await response(scope, receive, send)
            return
        # The SDK builds its own Request from this scope: the tool handler reads it there.
        scope.setdefault("state", {})[_USER_STATE] = user_id
        await self._manager.handle_request(scope, receive, send)

    async def _list_tools(
        self, ctx: Any, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=tool_list())

    async def _call_tool(
        self, ctx: Any, params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        request: Request = ctx.request
        services = request.app.state.services
        settings = services.settings
        call_id = _header(request.headers, settings.mcp_call_id_header, _MAX_CALL_ID)
        caller = _header(request.headers, settings.mcp_caller_number_header, _MAX_NUMBER)
        arguments = params.arguments if params.arguments is not None else {}
        derived = call_id is not None
        tool_call_id = (
            derived_call_id("mcp", call_id, params.name, arguments)
            if call_id is not None
            else f"mcp-{uuid.uuid4().hex}"
        )
        tool_request = ToolRequest(
            platform="mcp",
            call=CallContext(call_id=call_id, caller_number=caller),
            identity=(Authenticated("mcp api key", getattr(request.state, _USER_STATE)),),
            calls=(ToolCall(tool_call_id, params.name, arguments, derived_id=derived),),
        )
        (outcome,) = await services.pipeline.answer(tool_request)
        body = answer(outcome)
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=answer_text(body))],
            structured_content=body,
            is_error=False,
        )
