"""The admin API (bearer ADMIN_TOKEN): users, their API keys, and agent / phone number → user
links of every platform."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from vapi_calendar.oauth.disconnect import Disconnected, disconnect
from vapi_calendar.oauth.grants import unseal
from vapi_calendar.oauth.vault import TokenVault, VaultError
from vapi_calendar.ports.stores import (
    CONNECTED,
    GOOGLE,
    AlreadyExists,
    ApiKey,
    Connection,
    LinkKind,
    NotFound,
    User,
)
from vapi_calendar.server import inputs
from vapi_calendar.server.http import json_error
from vapi_calendar.server.inputs import KeyName, TimeZone, UserId, linked_id
from vapi_calendar.server.services import Services
from vapi_calendar.support.bearer import bearer_token
from vapi_calendar.support.signing import same
from vapi_calendar.support.validation import first_error
from vapi_calendar.tools.errors import InvalidStoredRules
from vapi_calendar.tools.rules import TIMEZONE_SOURCE, BookingRules, RulesError, merge_rules

log = logging.getLogger(__name__)


def new_user(user_id: str, timezone: str | None, default_timezone: str) -> User:
    return User(
        id=user_id,
        timezone=timezone or default_timezone,
        created_at=datetime.now(UTC),
        # Without an explicit zone the user takes their calendar's when they connect.
        rules={} if timezone else {TIMEZONE_SOURCE: "default"},
    )


class CreateUser(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: UserId
    timezone: TimeZone | None = None


class UpdateUser(BaseModel):
    """A partial update: only the fields sent change; `rules` keys merge into the stored ones."""

    model_config = ConfigDict(extra="forbid")
    timezone: TimeZone | None = None
    rules: dict[str, Any] | None = None


def updated_rules(user: User, timezone: str | None, patch: dict[str, Any] | None) -> dict[str, Any]:
    """The user's stored rules after an update; raises RulesError naming the bad field."""
    rules = merge_rules(user.rules, patch) if patch is not None else dict(user.rules)
    if timezone is not None:
        # An owner-chosen zone must not be replaced by the calendar's at connect time.
        rules[TIMEZONE_SOURCE] = "owner"
    return rules


class LinkUser(BaseModel):
    """The body of every link: which user a Vapi assistant or phone number acts for."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    user_id: UserId = Field(alias="userId")


class BadRequest(Exception):
    """Becomes a 400 whose message names the offending field."""


M = TypeVar("M", bound=BaseModel)
AdminHandler = Callable[[Request, Services], Awaitable[Response]]


async def read_body(request: Request, model: type[M]) -> M:
    try:
        return model.model_validate_json(await request.body())
    except ValidationError as exc:
        error = first_error(exc)
        raise BadRequest(f"{error.dotted(empty='body')}: {error.reason}") from None


def _authorized(services: Services, request: Request) -> bool:
    token = services.settings.admin_token
    presented = bearer_token(request.headers.get("authorization"))
    if token is None or presented is None:
        return False
    return same(presented, token.get_secret_value())


async def _disconnect(services: Services, user_id: str) -> Disconnected | None:
    return await disconnect(
        user_id,
        store=services.store,
        vault=services.vault,
        providers=services.providers,
        events=services.notifier,
    )


def admin_endpoint(handler: AdminHandler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        services: Services = request.app.state.services
        try:
            return await handler(request, services)
        except BadRequest as exc:
            return json_error(400, str(exc))

    return endpoint


class AdminGate:
    """Middleware: every request under /api is authenticated before it is even routed, so an
    unknown or odd path gets the same 401 as a known one, and nothing runs without the token."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and (path == "/api" or path.startswith("/api/")):
            request = Request(scope)
            if not _authorized(request.app.state.services, request):
                response = json_error(401, "unauthorized: a valid admin bearer token is required")
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def effective_rules(user: User) -> dict[str, Any] | None:
    """The rules tools apply (defaults filled in); None if the stored ones are invalid."""
    try:
        return BookingRules.for_user(user.rules).to_json()
    except InvalidStoredRules:
        return None


def connection_status(connection: Connection | None, vault: TokenVault) -> str:
    """not_connected | connected | needs_reconnect | undecryptable (no configured key reads the
    stored tokens: every call would fail, so it is not shown as connected)."""
    if connection is None:
        return "not_connected"
    try:
        unseal(vault, connection)
    except VaultError:
        log.error(
            "stored tokens of a user cannot be decrypted with the configured ENCRYPTION_KEY: "
            "put the old key back (after the new one) or send the user a new connect link",
            extra={"user_id": connection.user_id},
        )
        return "undecryptable"
    return connection.status


def connection_json(connection: Connection | None, vault: TokenVault) -> dict[str, Any]:
    status = connection_status(connection, vault)
    return {
        "connected": status == CONNECTED,
        "status": status,
        "email": connection.email if connection else None,
        # Calendars the user's rules read that cannot be read right now (see
        # oauth/readability.py); cleared when they read fine again.
        "warnings": [
            {"calendarId": w.calendar_id, "reason": w.reason, "since": w.since.isoformat()}
            for w in (connection.warnings if connection else ())
        ],
    }


def user_json(user: User, connection: Connection | None, vault: TokenVault) -> dict[str, Any]:
    google = connection if connection is not None and connection.provider == GOOGLE else None
    return {
        "id": user.id,
        "timezone": user.timezone,
        "createdAt": user.created_at.isoformat(),
        "rules": effective_rules(user),
        # The user's calendar connection, whichever provider it is with (one per user).
        "calendar": {
            "provider": connection.provider if connection else None,
            **connection_json(connection, vault),
        },
        # Kept for integrations written before Microsoft 365: the Google connection, if that is
        # what the user has.
        "google": connection_json(google, vault),
    }


async def create_user(request: Request, services: Services) -> Response:
    body = await read_body(request, CreateUser)
    user = new_user(body.id, body.timezone, services.settings.default_timezone)
    try:
        await services.store.create_user(user)
    except AlreadyExists:
        return json_error(409, f"user {body.id!r} already exists")
    return JSONResponse(user_json(user, None, services.vault), status_code=201)


async def get_user(request: Request, services: Services) -> Response:
    user_id = request.path_params["user_id"]
    user = await services.store.get_user(user_id)
    if user is None:
        return json_error(404, "no such user")
    return JSONResponse(
        user_json(user, await services.store.get_connection(user_id), services.vault)
    )


async def update_user(request: Request, services: Services) -> Response:
    user_id = request.path_params["user_id"]
    body = await read_body(request, UpdateUser)
    user = await services.store.get_user(user_id)
    if user is None:
        return json_error(404, "no such user")
    try:
        rules = updated_rules(user, body.timezone, body.rules)
    except RulesError as exc:
        raise BadRequest(str(exc)) from None
    try:
        user = await services.store.update_user(user_id, timezone=body.timezone, rules=rules)
    except NotFound:
        return json_error(404, "no such user")
    return JSONResponse(
        user_json(user, await services.store.get_connection(user_id), services.vault)
    )


def path_id(request: Request, param: str, label: str, check: Callable[[str], str]) -> str:
    """A path parameter that names something to store, checked like a body field."""
    try:
        return check(request.path_params[param])
    except ValueError as exc:
        raise BadRequest(f"{label}: {exc}") from None


async def link_assistant(request: Request, services: Services) -> Response:
    assistant_id = path_id(request, "assistant_id", "assistantId", linked_id)
    body = await read_body(request, LinkUser)
    try:
        await services.store.link_assistant(assistant_id, body.user_id)
    except NotFound:
        return json_error(404, f"no user {body.user_id!r}")
    return JSONResponse({"assistantId": assistant_id, "userId": body.user_id})


async def unlink_assistant(request: Request, services: Services) -> Response:
    if not await services.store.unlink_assistant(request.path_params["assistant_id"]):
        return json_error(404, "no such assistant link")
    return Response(status_code=204)


async def link_phone_number(request: Request, services: Services) -> Response:
    phone_number_id = path_id(request, "phone_number_id", "phoneNumberId", linked_id)
    body = await read_body(request, LinkUser)
    try:
        await services.store.link_phone_number(phone_number_id, body.user_id)
    except NotFound:
        return json_error(404, f"no user {body.user_id!r}")
    return JSONResponse({"phoneNumberId": phone_number_id, "userId": body.user_id})


async def unlink_phone_number(request: Request, services: Services) -> Response:
    if not await services.store.unlink_phone_number(request.path_params["phone_number_id"]):
        return json_error(404, "no such phone number link")
    return Response(status_code=204)


async def put_platform_link(request: Request, services: Services) -> Response:
    """PUT /api/links/{platform}/{agentId} and /api/links/{platform}/phone-numbers/{number}:
    which user a platform's agent (or one of its numbers) acts for. Vapi's are the same links
    as /api/assistants and /api/phone-numbers."""
    platform, kind, linked = _platform_link(request)
    body = await read_body(request, LinkUser)
    try:
        await services.store.put_link(platform, kind, linked, body.user_id)
    except NotFound:
        return json_error(404, f"no user {body.user_id!r}")
    key = "agentId" if kind == "agent" else "phoneNumber"
    return JSONResponse({"platform": platform, key: linked, "userId": body.user_id})


async def delete_platform_link(request: Request, services: Services) -> Response:
    platform, kind, linked = _platform_link(request)
    if not await services.store.delete_link(platform, kind, linked):
        return json_error(404, "no such link")
    return Response(status_code=204)


def _platform_link(request: Request) -> tuple[str, LinkKind, str]:
    platform = path_id(request, "platform", "platform", inputs.platform)
    if "phone_number" in request.path_params:
        number = path_id(
            request,
            "phone_number",
            "phoneNumber",
            lambda value: inputs.platform_phone_number(platform, value),
        )
        return platform, "phoneNumber", number
    return platform, "agent", path_id(request, "agent_id", "agentId", linked_id)


class NewApiKey(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: KeyName = ""


def api_key_json(key: ApiKey) -> dict[str, Any]:
    return {"id": key.id, "name": key.name, "createdAt": key.created_at.isoformat()}


async def create_api_key(request: Request, services: Services) -> Response:
    """A new MCP API key for the user: the key is in this answer and nowhere else, ever."""
    user_id = request.path_params["user_id"]
    body = await read_body(request, NewApiKey) if (await request.body()).strip() else NewApiKey()
    try:
        issued = await services.api_keys.issue(user_id, body.name)
    except NotFound:
        return json_error(404, "no such user")
    return JSONResponse(
        {**api_key_json(issued.record), "userId": user_id, "key": issued.key}, status_code=201
    )


async def list_api_keys(request: Request, services: Services) -> Response:
    user_id = request.path_params["user_id"]
    if await services.store.get_user(user_id) is None:
        return json_error(404, "no such user")
    keys = await services.store.list_api_keys(user_id)
    return JSONResponse({"userId": user_id, "apiKeys": [api_key_json(k) for k in keys]})


async def delete_api_key(request: Request, services: Services) -> Response:
    user_id, key_id = request.path_params["user_id"], request.path_params["key_id"]
    if not await services.store.delete_api_key(user_id, key_id):
        return json_error(404, "no such API key")
    return Response(status_code=204)


class ConnectLinkOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    # The link may connect a different account (or provider) than the one connected now.
    allow_account_change: bool = Field(default=False, alias="allowAccountChange")


async def create_connect_link(request: Request, services: Services) -> Response:
    user_id = request.path_params["user_id"]
    options = (
        await read_body(request, ConnectLinkOptions)
        if (await request.body()).strip()
        else ConnectLinkOptions()
    )
    if await services.store.get_user(user_id) is None:
        return json_error(404, "no such user")
    link = services.links.create(user_id, allow_account_change=options.allow_account_change)
    return JSONResponse(
        {
            "url": link.url,
            "expiresAt": link.expires_at.isoformat(),
            "allowAccountChange": link.allow_account_change,
        },
        status_code=201,
    )


async def create_call_token(request: Request, services: Services) -> Response:
    """The token that makes a user id in call metadata count (see oauth/call_tokens.py)."""
    user_id = request.path_params["user_id"]
    if await services.store.get_user(user_id) is None:
        return json_error(404, "no such user")
    return JSONResponse({"userId": user_id, "userToken": services.call_tokens.issue(user_id)})


async def disconnect_calendar(request: Request, services: Services) -> Response:
    """The user's connection, whichever provider (`/calendar`), or only a Google one
    (`/google`, as before Microsoft 365)."""
    user_id = request.path_params["user_id"]
    if await services.store.get_user(user_id) is None:
        return json_error(404, "no such user")
    if request.url.path.endswith("/google"):
        connection = await services.store.get_connection(user_id)
        if connection is None or connection.provider != GOOGLE:
            return json_error(404, "the user has no Google connection")
    outcome = await _disconnect(services, user_id)
    if outcome is None:
        return json_error(404, "the user has no calendar connection")
    body: dict[str, Any] = {"disconnected": True, "revoked": outcome.revoked}
    if outcome.revoke_error:
        body["revokeError"] = outcome.revoke_error
    return JSONResponse(body)


async def delete_user(request: Request, services: Services) -> Response:
    """Offboarding: revoke the grant at its provider (best effort), then delete every record."""
    user_id = request.path_params["user_id"]
    if await services.store.get_user(user_id) is None:
        return json_error(404, "no such user")
    outcome = await _disconnect(services, user_id)
    await services.store.delete_user(user_id)
    body: dict[str, Any] = {"deleted": True, "revoked": outcome.revoked if outcome else None}
    if outcome and outcome.revoke_error:
        body["revokeError"] = outcome.revoke_error
    return JSONResponse(body)


routes = [
    Route("/api/users", admin_endpoint(create_user), methods=["POST"]),
    Route("/api/users/{user_id}", admin_endpoint(get_user), methods=["GET"]),
    Route("/api/users/{user_id}", admin_endpoint(update_user), methods=["PATCH"]),
    Route("/api/users/{user_id}", admin_endpoint(delete_user), methods=["DELETE"]),
    Route(
        "/api/users/{user_id}/connect-link",
        admin_endpoint(create_connect_link),
        methods=["POST"],
    ),
    Route("/api/users/{user_id}/call-token", admin_endpoint(create_call_token), methods=["POST"]),
    Route("/api/users/{user_id}/calendar", admin_endpoint(disconnect_calendar), methods=["DELETE"]),
    Route("/api/users/{user_id}/google", admin_endpoint(disconnect_calendar), methods=["DELETE"]),
    Route("/api/users/{user_id}/api-keys", admin_endpoint(create_api_key), methods=["POST"]),
    Route("/api/users/{user_id}/api-keys", admin_endpoint(list_api_keys), methods=["GET"]),
    Route(
        "/api/users/{user_id}/api-keys/{key_id}",
        admin_endpoint(delete_api_key),
        methods=["DELETE"],
    ),
    Route("/api/links/{platform}/{agent_id}", admin_endpoint(put_platform_link), methods=["PUT"]),
    Route(
        "/api/links/{platform}/{agent_id}",
        admin_endpoint(delete_platform_link),
        methods=["DELETE"],
    ),
    Route(
        "/api/links/{platform}/phone-numbers/{phone_number}",
        admin_endpoint(put_platform_link),
        methods=["PUT"],
    ),
    Route(
        "/api/links/{platform}/phone-numbers/{phone_number}",
        admin_endpoint(delete_platform_link),
        methods=["DELETE"],
    ),
    Route("/api/assistants/{assistant_id}", admin_endpoint(link_assistant), methods=["PUT"]),
    Route("/api/assistants/{assistant_id}", admin_endpoint(unlink_assistant), methods=["DELETE"]),
    Route(
        "/api/phone-numbers/{phone_number_id}",
        admin_endpoint(link_phone_number),
        methods=["PUT"],
    ),
    Route(
        "/api/phone-numbers/{phone_number_id}",
        admin_endpoint(unlink_phone_number),
        methods=["DELETE"],
    ),
]
