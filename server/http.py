"""Small HTTP helpers shared by the edge's routes."""

from __future__ import annotations

from starlette.responses import JSONResponse


def json_error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)
