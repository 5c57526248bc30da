"""The MCP server at /mcp (issue #13), through the `mcp` SDK's own client over real HTTP.

The same five tools with the same schemas, rules and answers as every platform; the API key
alone decides the user, and anything without a valid key is 401 before anything runs.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from vapi.types import CreateMcpToolDto

from tests.harness.app import App
from tests.harness.platforms import CALLER_NUMBER, api_key, mcp_answer
from vapi_calendar.server.tool_schemas import parameters
from vapi_calendar.tools.table import TOOLS

CHECK = ("checkAvailability", {"startDateTime": "2031-03-11T09:00:00"})
BOOK = ("scheduleAppointment", {"startDateTime": "2031-03-11T10:00:00", "summary": "Haircut"})


def test_lists_the_five_tools_with_the_schemas_every_platform_gets(app: App) -> None:
    key = api_key(app)

    async def listed() -> Any:
        async with (
            httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}) as http,
            streamable_http_client(f"{app.url}/mcp", http_client=http) as (read, write),
        ):
            from mcp import ClientSession

            async with ClientSession(read, write) as session:
                init = await session.initialize()
                assert init.server_info.name == "vapi-calendar"
                return await session.list_tools()

    tools = asyncio.run(listed()).tools
    assert [t.name for t in tools] == [t.name for t in TOOLS]
    for listed_tool, spec in zip(tools, TOOLS, strict=True):
        assert listed_tool.input_schema == parameters(spec.arguments)
        assert listed_tool.description == spec.description


def test_the_sdks_convenience_client_works_too(app: App) -> None:
    """`mcp.Client` negotiates on its own (the 2026 per-request protocol, else initialize)."""
    key = api_key(app)

    async def call() -> Any:
        async with (
            httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}) as http,
            Client(streamable_http_client(f"{app.url}/mcp", http_client=http)) as client,
        ):
            return await client.call_tool(*CHECK)

    result = asyncio.run(call())
    assert result.is_error is False
    assert json.loads(result.content[0].text)["available"] is True


def test_answers_are_the_same_as_vapis(app: App) -> None:
    key = api_key(app)
    over_mcp = mcp_answer(app, key, *CHECK)
    over_vapi = app.call_tool(*CHECK)
    assert over_mcp == over_vapi
    assert over_mcp["message"] == "Tuesday, March 11, 2031 from 9:00 to 9:30 AM EDT is free."


def test_a_failure_is_a_sentence_with_how_to_say_it(app: App) -> None:
    key = api_key(app)
    fixable = mcp_answer(app, key, "checkAvailability", {"startDateTime": "next blursday"})
    assert fixable["callerCanFix"] is True
    assert fixable["error"].startswith("I could not read startDateTime")
    assert "own words" in fixable["instruction"]
    unknown = mcp_answer(app, key, "bookFlight", {})
    assert unknown["error"] == "The calendar action 'bookFlight' is not available."
    app.create_user("bob")  # no calendar connected
    final = mcp_answer(app, api_key(app, "bob"), *CHECK)
    assert final == {
        "error": "The calendar is not connected yet, so I cannot check or book times right now.",
        "callerCanFix": False,
        "instruction": "Tell the caller exactly this sentence, word for word, and do not "
        "retry now.",
    }


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer vcal_not-a-key", "Bearer", "Basic dXNlcjpwYXNz", "vcal_missing-scheme"],
)
def test_no_valid_key_is_401_before_anything_runs(app: App, authorization: str | None) -> None:
    headers = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
    if authorization is not None:
        headers["authorization"] = authorization
    call = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": BOOK[0], "arguments": BOOK[1]},
    }
    response = app.http.post(f"{app.url}/mcp", json=call, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert app.emulator.control.requests() == {}
    assert app.emulator.control.events("ana@example.com") == []


def test_the_sdk_client_without_a_key_is_refused(app: App) -> None:
    statuses: list[int] = []

    async def seen(response: Any) -> None:
        statuses.append(response.status_code)

    async def connect() -> None:
        async with (
            httpx2.AsyncClient(event_hooks={"response": [seen]}) as http,
            streamable_http_client(f"{app.url}/mcp", http_client=http) as (read, write),
        ):
            from mcp import ClientSession

            async with ClientSession(read, write) as session:
                await session.initialize()

    with pytest.raises(Exception, match="error"):
        asyncio.run(connect())
    assert statuses == [401]
    assert app.emulator.control.requests() == {}


def test_a_revoked_key_stops_working_at_once(app: App) -> None:
    created = app.admin.post("/api/users/ana/api-keys", json={"name": "vapi"}).json()
    assert mcp_answer(app, created["key"], *CHECK)["available"] is True
    assert app.admin.delete(f"/api/users/ana/api-keys/{created['id']}").status_code == 204
    response = app.http.post(
        f"{app.url}/mcp", headers={"authorization": f"Bearer {created['key']}"}
    )
    assert response.status_code == 401


def test_the_key_alone_decides_the_user(app: App) -> None:
    """Bob's key books in Bob's calendar, whatever the request says about anyone else."""
    app.create_user("bob")
    app.admin.patch("/api/users/bob", json={"rules": {"bookingHorizonDays": 3650}})
    app.connect_google("bob", "bob@example.com")
    booked = mcp_answer(app, api_key(app, "bob"), *BOOK, call_id="call-bob-1")
    assert booked["booked"] is True
    assert len(app.emulator.control.events("bob@example.com")) == 1
    assert app.emulator.control.events("ana@example.com") == []


def test_a_retried_call_books_once_and_gets_the_same_answer(app: App) -> None:
    key = api_key(app)
    first = mcp_answer(app, key, *BOOK, call_id="vapi-call-42")
    again = mcp_answer(app, key, *BOOK, call_id="vapi-call-42")
    assert first["booked"] is True and again == first
    (event,) = app.emulator.control.events("ana@example.com")
    assert event["extendedProperties"]["private"]["callId"] == "vapi-call-42"


def test_a_lookup_asked_again_in_the_same_call_is_read_afresh(app: App) -> None:
    """Without tool call ids the same question later in a call has the same derived id: a
    lookup must not be answered from the first time it was asked."""
    key = api_key(app)
    find = ("findAppointments", {})
    before = mcp_answer(app, key, *find, call_id="call-7", caller=CALLER_NUMBER)
    assert before["count"] == 0
    assert mcp_answer(app, key, *BOOK, call_id="call-7", caller=CALLER_NUMBER)["booked"] is True
    after = mcp_answer(app, key, *find, call_id="call-7", caller=CALLER_NUMBER)
    assert after["count"] == 1


def test_the_caller_number_header_scopes_appointments(app: App) -> None:
    key = api_key(app)
    assert mcp_answer(app, key, *BOOK, call_id="c-1", caller=CALLER_NUMBER)["booked"] is True
    mine = mcp_answer(app, key, "findAppointments", {}, call_id="c-2", caller=CALLER_NUMBER)
    theirs = mcp_answer(app, key, "findAppointments", {}, call_id="c-3", caller="+14155550000")
    assert mine["count"] == 1 and theirs["count"] == 0


def test_get_is_not_offered(app: App) -> None:
    """A stateless server never writes to the SSE stream a GET would open."""
    key = api_key(app)
    response = app.http.get(f"{app.url}/mcp", headers={"authorization": f"Bearer {key}"})
    assert response.status_code == 405


def test_any_host_is_served(app: App) -> None:
    """The SDK's DNS-rebinding check would answer 421 to a real deployment's Host."""
    key = api_key(app)
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    response = app.http.post(
        f"{app.url}/mcp",
        json=body,
        headers={
            "authorization": f"Bearer {key}",
            "host": "calendar.example.com",
            "accept": "application/json, text/event-stream",
            "mcp-protocol-version": "2025-06-18",
        },
    )
    assert response.status_code == 200, response.text
    assert len(response.json()["result"]["tools"]) == 5


def test_vapi_tools_mcp_prints_a_vapi_mcp_tool(app: App, tmp_path: Path) -> None:
    key = api_key(app)
    done = app.cli(
        "vapi-tools", "--mcp", "--server-url", "https://cal.example.com", "--api-key", key
    )
    assert done.returncode == 0, done.stderr
    (tool,) = json.loads(done.stdout)["tools"]
    CreateMcpToolDto.model_validate(tool)
    assert tool["type"] == "mcp" and tool["metadata"] == {"protocol": "shttp"}
    assert tool["server"]["url"] == "https://cal.example.com/mcp"
    assert tool["server"]["headers"] == {"Authorization": f"Bearer {key}"}
    assert [m["name"] for m in tool["toolMessages"]] == [t.name for t in TOOLS]
    missing = app.cli("vapi-tools", "--mcp", "--server-url", "https://cal.example.com")
    assert missing.returncode != 0 and "--api-key" in missing.stderr


def test_the_printed_tool_reaches_the_server(app: App) -> None:
    """The URL and header `vapi-tools --mcp` prints are what the server accepts."""
    key = api_key(app)
    done = app.cli("vapi-tools", "--mcp", "--server-url", app.url, "--api-key", key)
    (tool,) = json.loads(done.stdout)["tools"]
    headers = {
        **tool["server"]["headers"],
        "accept": "application/json, text/event-stream",
        "mcp-protocol-version": "2025-06-18",
    }
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    response = httpx.post(tool["server"]["url"], json=body, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
