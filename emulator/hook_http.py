"""How a control hook (`/_emulator/*`) reads its JSON body and answers, for every emulator."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

Handler = Callable[[Request], Awaitable[Response]]


class HookError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def hook(fn: Callable[[Request, dict[str, Any]], Awaitable[Any]]) -> Handler:
    async def handle(request: Request) -> Response:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            return JSONResponse({"error": "body must be JSON"}, status_code=400)
        if not isinstance(body, dict) and request.method != "GET":
            return JSONResponse({"error": "body must be a JSON object"}, status_code=400)
        try:
            result = await fn(request, body)
        except HookError as exc:
            return JSONResponse({"error": exc.message}, status_code=exc.status)
        except (KeyError, TypeError, ValueError) as exc:
            return JSONResponse({"error": f"bad request: {exc}"}, status_code=400)
        return JSONResponse(result if result is not None else {})

    return handle
