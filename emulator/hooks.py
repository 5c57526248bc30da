"""Unauthenticated `/_emulator/*` control hooks used by tests and demo mode (JSON in, JSON out)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from vapi_calendar.emulator import events as ev
from vapi_calendar.emulator.calendar import base_url
from vapi_calendar.emulator.errors import ApiError
from vapi_calendar.emulator.state import EmulatorState, Fault, normalize_scopes
from vapi_calendar.emulator.times import zone

Handler = Callable[[Request], Awaitable[Response]]


class HookError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _hook(fn: Callable[[Request, dict[str, Any]], Awaitable[Any]]) -> Handler:
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


def _timezone(name: Any) -> str | None:
    if name is None:
        return None
    zone(str(name))  # raises ValueError -> 400
    return str(name)


def make_routes(state: EmulatorState) -> list[Route]:
    async def clients(request: Request, body: dict[str, Any]) -> Any:
        client = state.register_client(
            str(body["client_id"]), str(body["client_secret"]), body.get("redirect_uris") or ()
        )
        return {"client_id": client.client_id}

    async def accounts(request: Request, body: dict[str, Any]) -> Any:
        account = state.ensure_account(
            str(body["email"]), _timezone(body.get("timezone")), body.get("sub")
        )
        return account.to_json()

    async def get_account(request: Request, body: dict[str, Any]) -> Any:
        account = state.get_account(request.path_params["email"])
        if account is None:
            raise HookError(404, "unknown account")
        return account.to_json()

    async def add_calendar(request: Request, body: dict[str, Any]) -> Any:
        try:
            calendar = state.add_calendar(
                request.path_params["email"],
                str(body["id"]),
                body.get("summary"),
                _timezone(body.get("timeZone")),
            )
        except KeyError as exc:
            raise HookError(404, "unknown account") from exc
        return calendar.to_json()

    async def tokens(request: Request, body: dict[str, Any]) -> Any:
        client_id = str(body["client_id"])
        if state.get_client(client_id) is None:
            raise HookError(404, f"unknown client {client_id!r}; register it first")
        account = state.ensure_account(str(body["email"]))
        scopes = body.get("scopes") or []
        if isinstance(scopes, str):
            scopes = scopes.split()
        expires_in = int(body.get("expires_in", 3600))
        access, grant = state.issue_tokens(
            email=account.email,
            client_id=client_id,
            scopes=normalize_scopes(scopes),
            expires_in=expires_in,
        )
        assert grant is not None
        return {
            "access_token": access.token,
            "refresh_token": grant.refresh_token,
            "expires_in": expires_in,
            "scope": " ".join(access.scopes),
        }

    async def expire_access(request: Request, body: dict[str, Any]) -> Any:
        return {"expired": state.expire_access_tokens(str(body["email"]))}

    async def revoke_grants(request: Request, body: dict[str, Any]) -> Any:
        return {"revoked": state.revoke_grants(str(body["email"]))}

    async def seed_event(request: Request, body: dict[str, Any]) -> Any:
        cid = request.path_params["cid"]
        calendar = state.get_calendar(cid)
        if calendar is None and "@" in cid:
            state.ensure_account(cid)
            calendar = state.get_calendar(cid)
        if calendar is None:
            raise HookError(404, f"unknown calendar {cid!r}")
        try:
            version = int(request.query_params.get("conferenceDataVersion", "1"))
        except ValueError as exc:
            raise HookError(400, "conferenceDataVersion must be an integer") from exc
        event = ev.build_new_event(
            body, calendar, calendar.owner, base_url=base_url(request), conference_version=version
        )
        if not state.insert_event(calendar, event):
            raise ApiError(409, "duplicate", "The requested identifier already exists.")
        return event

    async def list_events(request: Request, body: dict[str, Any]) -> Any:
        calendar = state.get_calendar(request.path_params["cid"])
        if calendar is None:
            raise HookError(404, "unknown calendar")
        return state.list_events(calendar)

    async def add_fault(request: Request, body: dict[str, Any]) -> Any:
        probability = body.get("probability")
        if probability is not None and not 0 <= float(probability) <= 1:
            raise HookError(400, "probability must be within 0..1")
        status = body.get("status")
        state.add_fault(
            Fault(
                kind=str(body["kind"]),
                status=int(status) if status is not None else None,
                error=body.get("error"),
                error_description=body.get("error_description"),
                body=body.get("body"),
                times=int(body.get("times", 1)),
                probability=float(probability) if probability is not None else None,
                latency_ms=int(body.get("latency_ms") or 0),
            )
        )
        return {}

    async def clear_faults(request: Request, body: dict[str, Any]) -> Any:
        state.clear_faults()
        return {}

    async def latency(request: Request, body: dict[str, Any]) -> Any:
        state.set_latency(int(body["ms"]), body.get("kind"))
        return {}

    async def requests(request: Request, body: dict[str, Any]) -> Any:
        return state.request_counts()

    async def reset_requests(request: Request, body: dict[str, Any]) -> Any:
        state.reset_requests()
        return {}

    async def reset(request: Request, body: dict[str, Any]) -> Any:
        state.reset()
        return {}

    async def settings(request: Request, body: dict[str, Any]) -> Any:
        if "rotate_refresh_tokens" in body:
            state.set_rotate_refresh_tokens(bool(body["rotate_refresh_tokens"]))
        return {"rotate_refresh_tokens": state.rotate_refresh_tokens}

    p = "/_emulator"
    return [
        Route(f"{p}/clients", _hook(clients), methods=["POST"]),
        Route(f"{p}/accounts", _hook(accounts), methods=["POST"]),
        Route(f"{p}/accounts/{{email}}", _hook(get_account), methods=["GET"]),
        Route(f"{p}/accounts/{{email}}/calendars", _hook(add_calendar), methods=["POST"]),
        Route(f"{p}/tokens", _hook(tokens), methods=["POST"]),
        Route(f"{p}/expire-access-tokens", _hook(expire_access), methods=["POST"]),
        Route(f"{p}/revoke-grants", _hook(revoke_grants), methods=["POST"]),
        Route(f"{p}/calendars/{{cid}}/events", _hook(seed_event), methods=["POST"]),
        Route(f"{p}/calendars/{{cid}}/events", _hook(list_events), methods=["GET"]),
        Route(f"{p}/faults", _hook(add_fault), methods=["POST"]),
        Route(f"{p}/faults", _hook(clear_faults), methods=["DELETE"]),
        Route(f"{p}/latency", _hook(latency), methods=["POST"]),
        Route(f"{p}/requests", _hook(requests), methods=["GET"]),
        Route(f"{p}/reset-requests", _hook(reset_requests), methods=["POST"]),
        Route(f"{p}/reset", _hook(reset), methods=["POST"]),
        Route(f"{p}/settings", _hook(settings), methods=["POST"]),
    ]
