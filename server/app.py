"""The application as plain data: routes, middleware and a lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from oauth import routes as oauth_routes
from server import admin, metrics
from server.access_log import AccessLog
from server.config import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_EMULATOR_PATH, Settings
from server.services import Services, open_services
from server.webhook import vapi_webhook

log = logging.getLogger(__name__)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    try:
        await request.app.state.services.store.ping()
    except Exception:
        return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
    return JSONResponse({"status": "ready"})


async def refresh_tokens_ahead(services: Services, interval: float) -> None:
    """Keep active users' tokens fresh so no tool call pays for a refresh (a lifespan task)."""
    # Look two intervals past the hot-path margin: a token is refreshed here at least one
    # full interval before a call would have to.
    horizon = timedelta(seconds=2 * interval)
    while True:
        await asyncio.sleep(interval)
        try:
            await services.credentials.refresh_ahead(horizon)
        except Exception:
            log.exception("background token refresh failed")


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings()
    routes: list[BaseRoute] = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics.metrics_endpoint, methods=["GET"]),
        Route("/vapi/webhook", vapi_webhook, methods=["POST"]),
        *admin.routes,
        *oauth_routes.routes,
    ]
    emulator_state = None
    if settings.demo_mode and not settings.google_emulator_url:
        from emulator.app import create_emulator_app
        from emulator.state import EmulatorState

        emulator_state = EmulatorState(clients={DEMO_CLIENT_ID: DEMO_CLIENT_SECRET})
        routes.append(Mount(DEMO_EMULATOR_PATH, app=create_emulator_app(emulator_state)))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        services = await open_services(settings)
        app.state.services = services
        tasks = [asyncio.create_task(metrics.monitor_loop_lag())]
        if settings.background_refresh_seconds > 0:
            tasks.append(
                asyncio.create_task(
                    refresh_tokens_ahead(services, settings.background_refresh_seconds)
                )
            )
        try:
            if settings.demo_mode:
                from server.demo import start_demo

                await start_demo(services, emulator_state)
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await services.close()

    return Starlette(
        routes=routes,
        middleware=[Middleware(AccessLog)],
        lifespan=lifespan,
        max_body_size=settings.max_body_bytes,
    )
