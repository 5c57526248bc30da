"""Requests as Retell, ElevenLabs and MCP clients send them, to a running app.

Retell's signature is made by retell-sdk's own signer (`retell.lib.webhook_auth`), MCP requests
by the `mcp` SDK's own client over real HTTP; ElevenLabs has no request-signing SDK: its webhook
tools send the configured headers, here `Authorization: Bearer <secret>`.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import httpx2
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from retell.lib.webhook_auth import symmetric

from tests.harness.app import ELEVENLABS_TOOL_SECRET, RETELL_API_KEY, App

FIXTURES = Path(__file__).parent.parent / "fixtures"
RETELL_FIXTURES = FIXTURES / "retell"
ELEVENLABS_FIXTURES = FIXTURES / "elevenlabs"
# The fixtures' identities (tests/fixtures/retell/README.md, tests/fixtures/elevenlabs/README.md).
RETELL_AGENT = "ag_ana_haircuts_retell_0001"
ELEVENLABS_AGENT = "agent_4801k2ana0haircuts0el0001"
ANA_NUMBER = "+14155550199"
CALLER_NUMBER = "+14155550123"


def retell_sign(body: bytes, api_key: str = RETELL_API_KEY, timestamp_ms: int | None = None) -> str:
    """`X-Retell-Signature` as Retell makes it (retell-sdk's signer, which takes text)."""
    signature: str = symmetric["sign"](body.decode(), api_key, timestamp_ms)
    return signature


def retell_post(
    app: App,
    tool: str,
    body: dict[str, Any] | bytes,
    *,
    signature: str | None = "sign",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """POST a custom-function call; `signature="sign"` signs it with the app's key, None sends
    no signature, anything else is sent as it is."""
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    sent = {"content-type": "application/json", **(headers or {})}
    if signature == "sign":
        sent["x-retell-signature"] = retell_sign(content)
    elif signature is not None:
        sent["x-retell-signature"] = signature
    return app.http.post(f"{app.url}/retell/functions/{tool}", content=content, headers=sent)


def retell_answer(app: App, tool: str, body: dict[str, Any], **kw: Any) -> dict[str, Any]:
    response = retell_post(app, tool, body, **kw)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def retell_fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((RETELL_FIXTURES / name).read_text())
    return loaded


def retell_request(
    tool: str, args: dict[str, Any], *, call_id: str = "call_retell_1", **call: Any
) -> dict[str, Any]:
    """A full custom-function request: an inbound phone call to Ana's Retell agent."""
    return {
        "name": tool,
        "call": {
            "call_type": "phone_call",
            "call_id": call_id,
            "agent_id": RETELL_AGENT,
            "agent_version": 1,
            "call_status": "ongoing",
            "direction": "inbound",
            "from_number": CALLER_NUMBER,
            "to_number": ANA_NUMBER,
            **call,
        },
        "args": args,
    }


def elevenlabs_post(
    app: App,
    tool: str,
    body: dict[str, Any] | bytes,
    *,
    secret: str | None = ELEVENLABS_TOOL_SECRET,
) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"content-type": "application/json"}
    if secret is not None:
        headers["authorization"] = f"Bearer {secret}"
    return app.http.post(f"{app.url}/elevenlabs/tools/{tool}", content=content, headers=headers)


def elevenlabs_answer(app: App, tool: str, body: dict[str, Any], **kw: Any) -> dict[str, Any]:
    response = elevenlabs_post(app, tool, body, **kw)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def elevenlabs_fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((ELEVENLABS_FIXTURES / name).read_text())
    return loaded


def elevenlabs_body(args: dict[str, Any], conversation: str = "conv_test_1") -> dict[str, Any]:
    """What Ana's ElevenLabs agent sends on a phone call: the arguments plus the system
    variables the printed tools ask for."""
    return {
        **args,
        "system__agent_id": ELEVENLABS_AGENT,
        "system__called_number": ANA_NUMBER,
        "system__caller_id": CALLER_NUMBER,
        "system__conversation_id": conversation,
    }


def api_key(app: App, user_id: str = "ana", name: str = "") -> str:
    response = app.admin.post(f"/api/users/{user_id}/api-keys", json={"name": name})
    assert response.status_code == 201, response.text
    return str(response.json()["key"])


async def mcp_calls(
    url: str,
    key: str | None,
    calls: list[tuple[str, dict[str, Any]]],
    *,
    headers: dict[str, str] | None = None,
) -> list[Any]:
    """One MCP session (the SDK's `ClientSession`, as Vapi-era clients speak it) making `calls`;
    the `CallToolResult`s."""
    sent = dict(headers or {})
    if key is not None:
        sent["Authorization"] = f"Bearer {key}"
    async with (
        httpx2.AsyncClient(headers=sent, timeout=30) as http,
        streamable_http_client(f"{url}/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        return [await session.call_tool(name, arguments) for name, arguments in calls]


def mcp_answer(
    app: App,
    key: str,
    tool: str,
    arguments: dict[str, Any],
    *,
    call_id: str | None = None,
    caller: str | None = None,
) -> dict[str, Any]:
    """One tool call over MCP; the JSON answer (its text content, checked against the
    structured content)."""
    headers = {}
    if call_id is not None:
        headers["X-Call-Id"] = call_id
    if caller is not None:
        headers["X-Caller-Number"] = caller
    (result,) = asyncio.run(mcp_calls(app.url, key, [(tool, arguments)], headers=headers))
    assert result.is_error is False
    (content,) = result.content
    answer: dict[str, Any] = json.loads(content.text)
    assert answer == result.structured_content
    return answer
