"""The fastest plain handler to compare against: a bare Starlette handler doing the one HTTP call.

`POST /webhook` reads and parses the JSON body like a webhook would, makes the same single
freeBusy request to the Google stand-in that `checkAvailability` makes (the bench puts the
window the server would query into the arguments as `timeMin` / `timeMax`), and answers a
Vapi-shaped result. Nothing else: no auth, no store, no token handling, no logging.

It runs on exactly the server's uvicorn settings (`vapi_calendar.server.http_server`:
uvloop, httptools with the same guarded protocol, the same keep-alive), so the two differ only
in what happens inside the handler.

Two HTTP clients:
- `aiohttp` (the comparison): one `ClientSession`, kept-alive connections — a maintained
  asyncio client, ~2.8x httpx's throughput at 50 concurrent calls and 0 ms Google here;
- `httpx` (an extra row): async httpx, round-robin over 16 clients, because one httpx pool
  serialises badly at ~50 concurrent requests. It shows what the client alone costs.

`GET /stats` answers `{"answered": n, "in_flight": n}` so the bench counts calls answered
(for CPU per call) and knows when the last one is done. `GET /metrics` has the event-loop lag,
measured by the server's own monitor (`server.metrics.monitor_loop_lag`: a 50 ms timer), so
the bench reports what the same bursts of callers do to a bare handler's loop.

    python -m bench.baseline --client aiohttp --port 8100 --emulator http://127.0.0.1:8200 \
        --token ya29...
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from vapi_calendar.server.metrics import monitor_loop_lag
from vapi_calendar.support.metrics import Metrics

TIMEZONE = "America/New_York"
HTTPX_CLIENTS = 16

Post = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


@asynccontextmanager
async def aiohttp_client(url: str, headers: dict[str, str]) -> AsyncIterator[Post]:
    import aiohttp

    # limit=0: no pool cap of its own; the load decides how many connections are open.
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=60)
    async with aiohttp.ClientSession(
        connector=connector, headers=headers, timeout=aiohttp.ClientTimeout(total=30)
    ) as session:

        async def post(body: dict[str, Any]) -> dict[str, Any]:
            async with session.post(url, json=body) as response:
                response.raise_for_status()
                return await response.json()

        yield post


@asynccontextmanager
async def httpx_client(url: str, headers: dict[str, str]) -> AsyncIterator[Post]:
    import httpx

    limits = httpx.Limits(max_connections=8, max_keepalive_connections=8)
    clients = [
        httpx.AsyncClient(timeout=30, limits=limits, headers=headers) for _ in range(HTTPX_CLIENTS)
    ]
    turn = [0]

    async def post(body: dict[str, Any]) -> dict[str, Any]:
        turn[0] = (turn[0] + 1) % len(clients)
        response = await clients[turn[0]].post(url, json=body)
        response.raise_for_status()
        return response.json()

    try:
        yield post
    finally:
        for client in clients:
            await client.aclose()


CLIENTS = {"aiohttp": aiohttp_client, "httpx": httpx_client}


def create_baseline_app(client: str, emulator_url: str, token: str) -> Starlette:
    url = f"{emulator_url}/calendar/v3/freeBusy"
    headers = {"authorization": f"Bearer {token}"}
    state: dict[str, Any] = {"answered": 0, "in_flight": 0}
    metrics = Metrics()

    async def webhook(request: Request) -> JSONResponse:
        state["in_flight"] += 1
        try:
            message = json.loads(await request.body())["message"]
            call = message["toolCallList"][0]
            arguments = call["function"]["arguments"]
            body = {
                "timeMin": arguments["timeMin"],
                "timeMax": arguments["timeMax"],
                "timeZone": TIMEZONE,
                "items": [{"id": "primary"}],
            }
            answer = await state["post"](body)
            busy = answer["calendars"]["primary"]["busy"]
            return JSONResponse(
                {
                    "results": [
                        {
                            "name": call["function"]["name"],
                            "toolCallId": call["id"],
                            "result": json.dumps({"busy": busy}, separators=(",", ":")),
                        }
                    ]
                }
            )
        finally:
            state["in_flight"] -= 1
            state["answered"] += 1

    async def stats(request: Request) -> JSONResponse:
        return JSONResponse({"answered": state["answered"], "in_flight": state["in_flight"]})

    async def lag(request: Request) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        monitor = asyncio.create_task(monitor_loop_lag(metrics))
        try:
            async with CLIENTS[client](url, headers) as post:
                state["post"] = post
                yield
        finally:
            monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await monitor

    return Starlette(
        routes=[
            Route("/webhook", webhook, methods=["POST"]),
            Route("/stats", stats, methods=["GET"]),
            Route("/metrics", lag, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


def main() -> None:
    import uvicorn

    from vapi_calendar.server.http_server import uvicorn_config

    parser = argparse.ArgumentParser(prog="python -m bench.baseline")
    parser.add_argument("--client", choices=sorted(CLIENTS), default="aiohttp")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--emulator", required=True)
    parser.add_argument("--token", required=True)
    args = parser.parse_args()
    config = uvicorn_config(
        create_baseline_app(args.client, args.emulator, args.token),
        read_timeout_seconds=15,
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
