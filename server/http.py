"""Small HTTP helpers shared by the edge's routes."""

from __future__ import annotations

import asyncio
import contextlib

import httpx
from starlette.responses import JSONResponse


def json_error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def until_serving(base_url: str, *, attempts: int = 600, interval: float = 0.05) -> bool:
    """Wait (a lifespan task) until this server answers its own /healthz: the lifespan starts
    before uvicorn listens. False if it never did within `attempts`."""
    async with httpx.AsyncClient(timeout=5) as client:
        for _ in range(attempts):
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{base_url}/healthz")).status_code == 200:
                    return True
            await asyncio.sleep(interval)
    return False
