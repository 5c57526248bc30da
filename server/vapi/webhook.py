"""POST /vapi/webhook: authenticate → parse → the tool pipeline → render.

Status codes are for transport problems only (401 unauthenticated, 400 malformed, 413 too
large). Everything that goes wrong inside a tool call is a 200 with a one-line `error` for that
call, because Vapi ignores non-200 answers entirely and the assistant would say nothing useful.
"""

from __future__ import annotations

from typing import Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from vapi_calendar.pipeline.pipeline import ToolPipeline
from vapi_calendar.server.config import Settings
from vapi_calendar.server.http import json_error
from vapi_calendar.server.vapi.auth import WebhookAuthenticator, WebhookAuthError
from vapi_calendar.server.vapi.protocol import (
    MalformedMessage,
    parse_server_message,
    render_results,
)


class WebhookServices(Protocol):
    """What the webhook needs of the app's services (`server.services.Services`)."""

    settings: Settings
    webhook_auth: WebhookAuthenticator
    pipeline: ToolPipeline


def _authenticate(services: WebhookServices, request: Request, body: bytes) -> JSONResponse | None:
    auth = services.webhook_auth
    if not auth.configured and services.settings.demo_mode:
        return None  # demo mode only: the one place the webhook runs unauthenticated
    # What an HMAC payload format's {url} stands for: the URL Vapi posted to, which is this
    # server's public URL (a proxy in front may have changed scheme and host). Only built when
    # a signature covers it.
    url = ""
    if auth.signs_url:
        url = services.settings.public_url + request.url.path
        if request.url.query:
            url += "?" + request.url.query
    try:
        auth.verify(request.headers, body, method=request.method, url=url)
    except WebhookAuthError as exc:
        return json_error(401, f"unauthorized: {exc}")
    return None


async def vapi_webhook(request: Request) -> Response:
    services: WebhookServices = request.app.state.services
    body = await request.body()
    if (denied := _authenticate(services, request, body)) is not None:
        return denied
    try:
        message = parse_server_message(body)
    except MalformedMessage as exc:
        return json_error(400, str(exc))
    if message.type != "tool-calls":
        return JSONResponse({})
    outcomes = await services.pipeline.answer(message.tool_request())
    return JSONResponse(render_results(outcomes))
