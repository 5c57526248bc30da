"""Unauthenticated `/_emulator/microsoft/*` control hooks (JSON in, JSON out).

Faults, latency and request counts are the shared `/_emulator/faults`, `/_emulator/latency`
and `/_emulator/requests` hooks, with Microsoft's request kinds (`graph.calendarView`,
`graph.events.create`, `entra.token.refresh_token`, …).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from vapi_calendar.emulator.hook_http import Handler, HookError, hook
from vapi_calendar.emulator.microsoft.errors import GraphApiError
from vapi_calendar.emulator.microsoft.graph import seed_event, stored_json, zone_of
from vapi_calendar.emulator.microsoft.state import MicrosoftState

PREFIX = "/_emulator/microsoft"


def _hook(fn: Callable[[Request, dict[str, Any]], Awaitable[Any]]) -> Handler:
    """The shared hook handler; a Graph refusal of the hook's input is a 400 naming it."""

    async def graph_refusals_are_bad_requests(request: Request, body: dict[str, Any]) -> Any:
        try:
            return await fn(request, body)
        except GraphApiError as exc:
            raise HookError(400, f"{exc.code}: {exc.message}") from None

    return hook(graph_refusals_are_bad_requests)


def make_routes(state: MicrosoftState) -> list[Route]:
    def account_of(request: Request) -> str:
        email = request.path_params["email"]
        if state.get_account(email) is None:
            raise HookError(404, "unknown account")
        return str(email)

    async def clients(request: Request, body: dict[str, Any]) -> Any:
        client = state.register_client(
            str(body["client_id"]), str(body["client_secret"]), body.get("redirect_uris") or ()
        )
        return {"client_id": client.client_id}

    async def client_rejected(request: Request, body: dict[str, Any]) -> Any:
        if not state.set_client_rejected(
            request.path_params["client_id"], bool(body.get("rejected", True))
        ):
            raise HookError(404, "unknown client")
        return {}

    async def accounts(request: Request, body: dict[str, Any]) -> Any:
        timezone = body.get("timezone")
        # "" and a custom zone are what Outlook can hold too: kept unchecked.
        if timezone and timezone not in ("Customized Time Zone", "tzone://Microsoft/Custom"):
            zone_of(str(timezone))
        mailbox = body.get("mailbox")
        account = state.ensure_account(
            str(body["email"]),
            timezone=None if timezone is None else str(timezone),
            has_mailbox=None if mailbox is None else bool(mailbox),
        )
        box = state.mailbox(account.email)
        assert box is not None
        return {**account.to_json(), "calendar_id": box.default_calendar}

    async def get_account(request: Request, body: dict[str, Any]) -> Any:
        email = account_of(request)
        account, box = state.get_account(email), state.mailbox(email)
        assert account is not None and box is not None
        return {**account.to_json(), "calendar_id": box.default_calendar}

    async def add_calendar(request: Request, body: dict[str, Any]) -> Any:
        email = account_of(request)
        cid = state.add_calendar(email, str(body.get("name") or "Calendar"), body.get("id"))
        return {"id": cid}

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
            email=account.email, client_id=client_id, scopes=tuple(scopes), expires_in=expires_in
        )
        assert grant is not None
        return {
            "access_token": access.token,
            "refresh_token": grant.refresh_token,
            "expires_in": expires_in,
            "scope": " ".join(access.scopes),
            "tid": account.tid,
            "oid": account.oid,
        }

    async def expire_access(request: Request, body: dict[str, Any]) -> Any:
        return {"expired": state.expire_access_tokens(str(body["email"]))}

    async def revoke_grants(request: Request, body: dict[str, Any]) -> Any:
        return {"revoked": state.revoke_grants(str(body["email"]))}

    async def seed(request: Request, body: dict[str, Any]) -> Any:
        email = account_of(request)
        event = dict(body)
        calendar_id = event.pop("calendarId", None)
        return seed_event(state, email, event, calendar_id)

    async def events(request: Request, body: dict[str, Any]) -> Any:
        email = account_of(request)
        box = state.mailbox(email)
        assert box is not None
        return [stored_json(e) for e in state.events(box)]

    async def settings(request: Request, body: dict[str, Any]) -> Any:
        state.configure(body)
        return state.settings()

    p = PREFIX
    return [
        Route(f"{p}/clients", _hook(clients), methods=["POST"]),
        Route(f"{p}/clients/{{client_id}}/rejected", _hook(client_rejected), methods=["POST"]),
        Route(f"{p}/accounts", _hook(accounts), methods=["POST"]),
        Route(f"{p}/accounts/{{email}}", _hook(get_account), methods=["GET"]),
        Route(f"{p}/accounts/{{email}}/calendars", _hook(add_calendar), methods=["POST"]),
        Route(f"{p}/accounts/{{email}}/events", _hook(seed), methods=["POST"]),
        Route(f"{p}/accounts/{{email}}/events", _hook(events), methods=["GET"]),
        Route(f"{p}/tokens", _hook(tokens), methods=["POST"]),
        Route(f"{p}/expire-access-tokens", _hook(expire_access), methods=["POST"]),
        Route(f"{p}/revoke-grants", _hook(revoke_grants), methods=["POST"]),
        Route(f"{p}/settings", _hook(settings), methods=["POST"]),
    ]
