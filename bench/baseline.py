"""The physical limit to compare against: a bare Starlette handler doing the one HTTP call.

`POST /webhook` reads and parses the JSON body like a webhook would, makes the same single
freeBusy request to the emulator that `checkAvailability` makes, with an async client
(httpx, kept-alive connections, no thread pool, no Google client library), and answers a small
JSON body. Nothing else: no auth, no store, no token handling, no logging.

The requests go round-robin over a few httpx clients: a single httpx pool serialises badly at
~100 concurrent requests (see bench/README.md), and the baseline should be the best a bare
async handler can do, not httpx's pool.

    python -m bench.baseline --port 8100 --emulator http://127.0.0.1:8200 --token ya29...
"""

from __future__ import annotations

import argparse
import json
from contextlib import asynccontextmanager
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

POOLS = 16


def create_baseline_app(emulator_url: str, token: str) -> Starlette:
    url = f"{emulator_url}/calendar/v3/freeBusy"
    headers = {"authorization": f"Bearer {token}"}
    state: dict[str, Any] = {}

    async def webhook(request: Request) -> JSONResponse:
        message = json.loads(await request.body())["message"]
        call = message["toolCallList"][0]
        arguments = call["function"]["arguments"]
        body = {
            "timeMin": arguments["timeMin"],
            "timeMax": arguments["timeMax"],
            "timeZone": "America/New_York",
            "items": [{"id": "primary"}],
        }
        clients = state["clients"]
        state["next"] = (state["next"] + 1) % len(clients)
        response = await clients[state["next"]].post(url, json=body, headers=headers)
        busy = response.json()["calendars"]["primary"]["busy"]
        return JSONResponse(
            {"results": [{"toolCallId": call["id"], "result": json.dumps({"busy": busy})}]}
        )

    @asynccontextmanager
    async def lifespan(app: Starlette):  # type: ignore[no-untyped-def]
        limits = httpx.Limits(max_connections=8, max_keepalive_connections=8)
        clients = [httpx.AsyncClient(timeout=30, limits=limits) for _ in range(POOLS)]
        state.update(clients=clients, next=0)
        try:
            yield
        finally:
            for client in clients:
                await client.aclose()

    return Starlette(routes=[Route("/webhook", webhook, methods=["POST"])], lifespan=lifespan)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.baseline")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--emulator", required=True)
    parser.add_argument("--token", required=True)
    args = parser.parse_args()
    uvicorn.run(
        create_baseline_app(args.emulator, args.token),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
