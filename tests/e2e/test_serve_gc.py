"""The served process's garbage collector (issue #12): what lives from startup on is frozen out
of collections, and the youngest generation is collected less often (`AppServer`)."""

from __future__ import annotations

import asyncio
import gc

import httpx
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from tests.harness.servers import free_port
from vapi_calendar.server.http_server import (
    YOUNG_GENERATION_THRESHOLD,
    AppServer,
    uvicorn_config,
)


async def test_serve_freezes_startup_objects_and_collects_young_ones_less_often() -> None:
    async def hello(request: object) -> PlainTextResponse:
        return PlainTextResponse("hi")

    port = free_port()
    app = Starlette(routes=[Route("/", hello)])
    server = AppServer(uvicorn_config(app, read_timeout_seconds=5, port=port, log_config=None))
    before = gc.get_threshold()
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not task.done(), "the server stopped during startup"
            await asyncio.sleep(0.01)
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == (YOUNG_GENERATION_THRESHOLD, *before[1:])
        async with httpx.AsyncClient() as client:
            answer = await client.get(f"http://127.0.0.1:{port}/")
        assert answer.text == "hi"
    finally:
        server.should_exit = True
        await task
        gc.unfreeze()
        gc.set_threshold(*before)
