"""The application as plain data: routes, middleware and a lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from vapi_calendar.ports.clock import Clock, system_clock
from vapi_calendar.server import admin, connect, openapi
from vapi_calendar.server.access_log import AccessLog
from vapi_calendar.server.admin import OPENAPI_PATH
from vapi_calendar.server.config import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_EMULATOR_PATH,
    DEMO_MICROSOFT_CLIENT_ID,
    DEMO_MICROSOFT_CLIENT_SECRET,
    Settings,
)
from vapi_calendar.server.elevenlabs.tools import TOOLS_PATH, elevenlabs_tool
from vapi_calendar.server.mcp.endpoint import MCP_PATH, McpEndpoint
from vapi_calendar.server.metrics import metrics_endpoint, monitor_loop_lag
from vapi_calendar.server.retell.functions import FUNCTIONS_PATH, retell_function
from vapi_calendar.server.services import Services, open_services, warn_about_open_doors
from vapi_calendar.server.vapi.oauth2 import TOKEN_PATH, token_endpoint
from vapi_calendar.server.vapi.webhook import vapi_webhook
from vapi_calendar.tools.timeparse import load_time_zones

log = logging.getLogger(__name__)

PURGE_INTERVAL_SECONDS = 600.0


async def client_gone(request: Request, exc: Exception) -> Response:
    """The client hung up before its request was read: nothing to answer, nothing went wrong.
    Logged at info (no traceback); 499 is nginx's "client closed request" in the access log."""
    log.info("client disconnected before its request was read", extra={"path": request.url.path})
    return Response(status_code=499)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """503 only for what this replica cannot serve without (the database). A refused OAuth
    client fails every replica alike, so it is reported as detail and keeps 200: failing
    readiness everywhere would take the whole service out, answers and all."""
    services: Services = request.app.state.services
    detail: dict[str, Any] = {}
    for provider, alarm in sorted(services.grants.client_alarms.items()):
        detail[provider] = {
            "oauthClient": "rejected",
            "reason": alarm.cause,
            "since": alarm.since.isoformat(),
        }
    try:
        await services.store.ping()
    except Exception:
        body = {"status": "unavailable", "database": "unreachable", **detail}
        return JSONResponse(body, status_code=503)
    return JSONResponse({"status": "ready", **detail})


async def refresh_tokens_ahead(services: Services, interval: float) -> None:
    """Keep active users' tokens fresh so no tool call pays for a refresh (a lifespan task)."""
    # Look two intervals past the hot-path margin: a token is refreshed here at least one
    # full interval before a call would have to.
    horizon = timedelta(seconds=2 * interval)
    while True:
        await asyncio.sleep(interval)
        try:
            await services.grants.refresh_ahead(horizon)
        except Exception:
            log.exception("background token refresh failed")


async def purge_expired(services: Services, interval: float) -> None:
    """Delete expired answers, leases and pending consents (a lifespan task): what expires is
    gone from the database, not merely ignored."""
    while True:
        try:
            purged = await services.store.purge_expired()
            if purged:
                log.info("purged expired records", extra={"count": purged})
        except Exception:
            log.exception("purging expired records failed")
        await asyncio.sleep(interval)


async def announce(public_url: str) -> None:
    """`serve --json` outside demo mode: one JSON object on stdout once the server answers."""
    from vapi_calendar.server.http import until_serving

    await until_serving(public_url)
    print(
        json.dumps({"url": public_url, "openapi": public_url + OPENAPI_PATH, "demo": None}),
        flush=True,
    )


def create_app(
    settings: Settings | None = None, *, clock: Clock = system_clock, announce_json: bool = False
) -> Starlette:
    """The app as plain data. `clock` is what the tools take as "now" (tests freeze it);
    `announce_json`: say where it serves as one JSON object on stdout (`serve --json`), the
    demo's banner included, instead of the banner on stderr."""
    settings = settings or Settings()
    mcp = McpEndpoint(max_body_bytes=settings.max_body_bytes)
    routes: list[BaseRoute] = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Route("/vapi/webhook", vapi_webhook, methods=["POST"]),
        Route(TOKEN_PATH, token_endpoint, methods=["POST"]),
        Route(f"{FUNCTIONS_PATH}/{{tool}}", retell_function, methods=["POST"]),
        Route(f"{TOOLS_PATH}/{{tool}}", elevenlabs_tool, methods=["POST"]),
        # An exact route: a Mount would answer POST /mcp with a redirect to /mcp/.
        Route(MCP_PATH, mcp, methods=["POST"]),
        openapi.route,
        *admin.routes,
        *connect.routes,
    ]
    emulator_state = None
    if settings.emulator_mounted:
        from vapi_calendar.emulator.app import create_emulator_app
        from vapi_calendar.emulator.state import EmulatorState

        emulator_state = EmulatorState(clients={DEMO_CLIENT_ID: DEMO_CLIENT_SECRET})
        emulator_state.microsoft.register_client(
            DEMO_MICROSOFT_CLIENT_ID, DEMO_MICROSOFT_CLIENT_SECRET
        )
        routes.append(Mount(DEMO_EMULATOR_PATH, app=create_emulator_app(emulator_state)))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        services = await open_services(settings, clock=clock)
        app.state.services = services
        # Before serving, and off the loop: otherwise the first call that names a zone reads it.
        await asyncio.to_thread(load_time_zones)
        warn_about_open_doors(settings, services.webhook_auth)
        tasks = [
            asyncio.create_task(monitor_loop_lag(services.metrics)),
            asyncio.create_task(purge_expired(services, PURGE_INTERVAL_SECONDS)),
        ]
        if settings.background_refresh_seconds > 0:
            tasks.append(
                asyncio.create_task(
                    refresh_tokens_ahead(services, settings.background_refresh_seconds)
                )
            )
        try:
            if settings.demo_mode:
                from vapi_calendar.server.demo import announce_when_serving, start_demo

                demo = await start_demo(services, emulator_state, as_json=announce_json)
                tasks.append(asyncio.create_task(announce_when_serving(services, demo)))
            elif announce_json:
                tasks.append(asyncio.create_task(announce(settings.public_url)))
            # The MCP SDK's session manager runs for the app's lifetime (once per app).
            async with mcp.run():
                yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await services.close()

    return Starlette(
        routes=routes,
        middleware=[Middleware(AccessLog), Middleware(admin.AdminGate)],
        exception_handlers={ClientDisconnect: client_gone, HTTPException: admin.api_http_error},
        lifespan=lifespan,
        max_body_size=settings.max_body_bytes,
    )
