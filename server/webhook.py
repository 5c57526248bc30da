"""POST /vapi/webhook: authenticate → parse → resolve user → credentials → tools → results.

Status codes are for transport problems only (401 unauthenticated, 400 malformed, 413 too
large). Everything that goes wrong inside a tool call is a 200 with a one-line `error` for that
call, because Vapi ignores non-200 answers entirely and the assistant would say nothing useful.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from server import metrics
from server.limits import UserBusy
from server.resolve import resolve_user
from server.services import Services
from server.store import User
from server.vapi import (
    MalformedMessage,
    ServerMessage,
    ToolCall,
    parse_server_message,
    results_body,
    tool_result,
)
from server.webhook_auth import WebhookAuthError
from tools.context import ToolContext
from tools.errors import InvalidArguments, ToolError, UnknownTool
from tools.google_calendar import UserCalendar
from tools.registry import TOOLS
from tools.retry import time_budget

log = logging.getLogger(__name__)

UNEXPECTED = "Something went wrong with the calendar. Please try again."
TOO_SLOW = "The calendar took too long to answer. Please try again in a moment."


def json_error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _authenticate(services: Services, request: Request, body: bytes) -> JSONResponse | None:
    auth = services.webhook_auth
    if not auth.configured and services.settings.demo_mode:
        return None  # demo mode only: the one place the webhook runs unauthenticated
    try:
        auth.verify(request.headers, body)
    except WebhookAuthError as exc:
        return json_error(401, f"unauthorized: {exc}")
    return None


async def vapi_webhook(request: Request) -> Response:
    services: Services = request.app.state.services
    body = await request.body()
    if (denied := _authenticate(services, request, body)) is not None:
        return denied
    try:
        message = parse_server_message(body)
    except MalformedMessage as exc:
        return json_error(400, str(exc))
    if message.type != "tool-calls":
        return JSONResponse({})
    return JSONResponse(await answer_tool_calls(services, message))


async def answer_tool_calls(services: Services, message: ServerMessage) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        user: User | ToolError = await resolve_user(message.call, services.store)
    except ToolError as exc:
        user = exc
    results = await asyncio.gather(
        *(_answer_one(services, message, call, user) for call in message.tool_calls)
    )
    log.info(
        "tool calls answered",
        extra={
            "call_id": message.call.call_id,
            "tools": [c.name for c in message.tool_calls],
            "user_id": user.id if isinstance(user, User) else None,
            "outcomes": ["error" if "error" in r else "ok" for r in results],
            "ms": round((time.perf_counter() - started) * 1000, 1),
        },
    )
    return results_body(list(results))


async def _answer_one(
    services: Services, message: ServerMessage, call: ToolCall, user: User | ToolError
) -> dict[str, Any]:
    budget = services.settings.tool_budget_seconds
    tool = metrics.tool_label(call.name, TOOLS)
    started = time.perf_counter()
    outcome = "ok"
    metrics.TOOL_CALLS_IN_FLIGHT.inc()
    try:
        # The deadline (for retries deep down) and the hard stop share one budget.
        with time_budget(budget):
            async with asyncio.timeout(budget):
                result = await _run_tool(services, message, call, user)
    except ToolError as exc:
        outcome = "busy" if isinstance(exc, UserBusy) else "error"
        return tool_result(call.id, call.name, error=exc.message)
    except TimeoutError:
        outcome = "timeout"
        log.warning("tool call exceeded its time budget", extra={"tool": tool})
        return tool_result(call.id, call.name, error=TOO_SLOW)
    except Exception:
        outcome = "unexpected"
        log.exception("tool call failed unexpectedly", extra={"tool": tool})
        return tool_result(call.id, call.name, error=UNEXPECTED)
    finally:
        metrics.TOOL_CALLS_IN_FLIGHT.dec()
        metrics.TOOL_CALLS.labels(tool=tool, outcome=outcome).inc()
        metrics.TOOL_SECONDS.labels(tool=tool).observe(time.perf_counter() - started)
    return tool_result(call.id, call.name, result=json.dumps(result, separators=(",", ":")))


async def _run_tool(
    services: Services, message: ServerMessage, call: ToolCall, user: User | ToolError
) -> dict[str, Any]:
    handler = TOOLS.get(call.name)
    if handler is None:
        raise UnknownTool(f"The calendar action {call.name[:64]!r} is not available.")
    if call.arguments_error:
        raise InvalidArguments(call.arguments_error)
    if isinstance(user, ToolError):
        raise user
    creds = await services.credentials.credentials_for(user.id)
    context = ToolContext(
        user=user,
        calendar=UserCalendar(services.gateway, services.credentials, user.id, creds),
        store=services.store,
        call=message.call,
        tool_call_id=call.id,
        now=datetime.now(UTC),
        booking_lease_seconds=services.settings.booking_lease_seconds,
    )
    # The cap guards the shared Google threads; waiting for a token refresh (one shared
    # refresh per user) takes none, so it does not count.
    async with services.user_limiter.slot(user.id):
        return await handler(context, call.arguments)
