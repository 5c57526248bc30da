"""The admin API (bearer ADMIN_TOKEN): users, their API keys, and agent / phone number → user
links of every platform.

`OPERATIONS` is the one declaration of every route: method, path, handler, the model that
validates its body and the models of its answers. The Starlette routes and the OpenAPI
description (`server/openapi.py`, served at /api/openapi.json) are both built from it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from vapi_calendar.oauth.disconnect import Disconnected as DisconnectOutcome
from vapi_calendar.oauth.disconnect import disconnect
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
from vapi_calendar.server.admin_models import (
    AgentLink,
    Answer,
    ApiKeyInfo,
    ApiKeyList,
    AssistantLink,
    CalendarState,
    CalendarWarning,
    CallToken,
    ConnectionState,
    ConnectLinkAnswer,
    ConnectLinkOptions,
    CreateUser,
    DeletedUser,
    Disconnected,
    IssuedApiKey,
    LinkUser,
    NewApiKey,
    PhoneNumberLink,
    UpdateUser,
    UserAnswer,
    VapiPhoneNumberLink,
)
from vapi_calendar.server.http import json_error
from vapi_calendar.server.services import Services
from vapi_calendar.support.bearer import bearer_token
from vapi_calendar.support.signing import same
from vapi_calendar.support.validation import first_error
from vapi_calendar.tools.errors import InvalidStoredRules
from vapi_calendar.tools.rules import TIMEZONE_SOURCE, BookingRules, RulesError, merge_rules

log = logging.getLogger(__name__)

API_PREFIX = "/api"
OPENAPI_PATH = "/api/openapi.json"


def new_user(user_id: str, timezone: str | None, default_timezone: str) -> User:
    return User(
        id=user_id,
        timezone=timezone or default_timezone,
        created_at=datetime.now(UTC),
        # Without an explicit zone the user takes their calendar's when they connect.
        rules={} if timezone else {TIMEZONE_SOURCE: "default"},
    )


def updated_rules(user: User, timezone: str | None, patch: dict[str, Any] | None) -> dict[str, Any]:
    """The user's stored rules after an update; raises RulesError naming the bad field."""
    rules = merge_rules(user.rules, patch) if patch is not None else dict(user.rules)
    if timezone is not None:
        # An owner-chosen zone must not be replaced by the calendar's at connect time.
        rules[TIMEZONE_SOURCE] = "owner"
    return rules


class Refused(Exception):
    """An answer other than success: the status and a message naming the problem."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class BadRequest(Refused):
    """A 400 whose message names the offending field or path parameter."""

    def __init__(self, message: str) -> None:
        super().__init__(400, message)


def _parse_body(raw: bytes, model: type[BaseModel]) -> BaseModel:
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        error = first_error(exc)
        raise BadRequest(f"{error.dotted(empty='body')}: {error.reason}") from None


def admin_token_problem(services: Services, request: Request) -> str | None:
    """Why the request may not use the admin API, or None when it may."""
    token = services.admin_token
    if token is None:
        # Says only that the server has none (fail closed), nothing about any token sent.
        return "unauthorized: no admin token is configured on this server (set ADMIN_TOKEN)"
    presented = bearer_token(request.headers.get("authorization"))
    if presented is None or not same(presented, token):
        return "unauthorized: a valid admin bearer token is required"
    return None


class AdminGate:
    """Middleware: every request under /api is authenticated before it is even routed, so an
    unknown or odd path gets the same 401 as a known one, and nothing runs without the token.
    The API's description (/api/openapi.json) is public: it holds nothing but the shapes."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] == "http"
            and (path == API_PREFIX or path.startswith(API_PREFIX + "/"))
            and not (path == OPENAPI_PATH and scope.get("method") in ("GET", "HEAD"))
        ):
            request = Request(scope)
            problem = admin_token_problem(request.app.state.services, request)
            if problem is not None:
                response = json_error(401, problem)
                response.headers["www-authenticate"] = "Bearer"
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def effective_rules(user: User) -> dict[str, Any] | None:
    """The rules tools apply (defaults filled in); None if the stored ones are invalid."""
    rules = _effective(user)
    return rules.to_json() if rules is not None else None


def _effective(user: User) -> BookingRules | None:
    try:
        return BookingRules.for_user(user.rules)
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


def _connection_fields(connection: Connection | None, vault: TokenVault) -> dict[str, Any]:
    status = connection_status(connection, vault)
    return {
        "connected": status == CONNECTED,
        "status": status,
        "email": connection.email if connection else None,
        # Calendars the user's rules read that cannot be read right now (see
        # oauth/readability.py); cleared when they read fine again.
        "warnings": [
            CalendarWarning(calendar_id=w.calendar_id, reason=w.reason, since=w.since.isoformat())
            for w in (connection.warnings if connection else ())
        ],
    }


def user_answer(user: User, connection: Connection | None, vault: TokenVault) -> UserAnswer:
    google = connection if connection is not None and connection.provider == GOOGLE else None
    return UserAnswer(
        id=user.id,
        timezone=user.timezone,
        created_at=user.created_at.isoformat(),
        rules=_effective(user),
        # The user's calendar connection, whichever provider it is with (one per user).
        calendar=CalendarState(
            provider=connection.provider if connection else None,  # type: ignore[arg-type]
            **_connection_fields(connection, vault),
        ),
        google=ConnectionState(**_connection_fields(google, vault)),
    )


def api_key_info(key: ApiKey) -> ApiKeyInfo:
    return ApiKeyInfo(id=key.id, name=key.name, created_at=key.created_at.isoformat())


def api_key_json(key: ApiKey) -> dict[str, Any]:
    return api_key_info(key).json_body()


# -- path parameters ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PathParam:
    """How a path parameter is named in messages, described, and checked (a parameter that
    names something to store is checked like the body field of the same name)."""

    label: str
    description: str
    schema: Mapping[str, Any]
    check: Callable[[str], str] | None = None


_ID_SCHEMA = inputs.LINKED_ID_SCHEMA
PATH_PARAMS: dict[str, PathParam] = {
    "user_id": PathParam(
        "userId",
        "the user's id",
        inputs.USER_ID_SCHEMA,
        inputs.user_id,
    ),
    "key_id": PathParam(
        "keyId", "an API key's id (from its creation or the list)", {"type": "string"}
    ),
    "assistant_id": PathParam("assistantId", "a Vapi assistant id", _ID_SCHEMA, inputs.linked_id),
    "phone_number_id": PathParam(
        "phoneNumberId", "a Vapi phone-number id", _ID_SCHEMA, inputs.linked_id
    ),
    "platform": PathParam(
        "platform", "the voice platform", {"enum": list(inputs.PLATFORMS)}, inputs.platform
    ),
    "agent_id": PathParam(
        "agentId",
        "the platform's agent id (for vapi: an assistant id)",
        _ID_SCHEMA,
        inputs.linked_id,
    ),
    # Checked against the platform in the handler: Vapi's are ids, the others' E.164.
    "phone_number": PathParam(
        "phoneNumber",
        "Vapi's phone-number id, or Retell's / ElevenLabs' number in E.164 (+14155550199)",
        {"type": "string", "maxLength": 128},
    ),
}


def _path_values(request: Request) -> dict[str, str]:
    values: dict[str, str] = {}
    for name, value in request.path_params.items():
        param = PATH_PARAMS[name]
        if param.check is not None:
            try:
                value = param.check(value)
            except ValueError as exc:
                raise BadRequest(f"{param.label}: {exc}") from None
        values[name] = value
    return values


# -- handlers ----------------------------------------------------------------------------------

Reply = Answer | None  # None: 204 No Content


@dataclass(frozen=True, slots=True)
class Call:
    """What a handler gets: the services, the checked path parameters, the validated body."""

    services: Services
    path: dict[str, str]
    body: Any


async def _known_user(call: Call) -> User:
    user = await call.services.store.get_user(call.path["user_id"])
    if user is None:
        raise Refused(404, "no such user")
    return user


async def _disconnect(services: Services, user_id: str) -> DisconnectOutcome | None:
    return await disconnect(
        user_id,
        store=services.store,
        vault=services.vault,
        providers=services.providers,
        events=services.notifier,
    )


async def create_user(call: Call) -> Reply:
    body: CreateUser = call.body
    services = call.services
    user = new_user(body.id, body.timezone, services.settings.default_timezone)
    try:
        await services.store.create_user(user)
    except AlreadyExists:
        raise Refused(409, f"user {body.id!r} already exists") from None
    return user_answer(user, None, services.vault)


async def get_user(call: Call) -> Reply:
    user = await _known_user(call)
    connection = await call.services.store.get_connection(user.id)
    return user_answer(user, connection, call.services.vault)


async def update_user(call: Call) -> Reply:
    body: UpdateUser = call.body
    store = call.services.store
    user = await _known_user(call)
    try:
        rules = updated_rules(user, body.timezone, body.rules)
    except RulesError as exc:
        raise BadRequest(str(exc)) from None
    try:
        user = await store.update_user(user.id, timezone=body.timezone, rules=rules)
    except NotFound:
        raise Refused(404, "no such user") from None
    return user_answer(user, await store.get_connection(user.id), call.services.vault)


async def delete_user(call: Call) -> Reply:
    """Offboarding: revoke the grant at its provider (best effort), then delete every record."""
    user = await _known_user(call)
    outcome = await _disconnect(call.services, user.id)
    await call.services.store.delete_user(user.id)
    return DeletedUser(
        deleted=True,
        revoked=outcome.revoked if outcome else None,
        revoke_error=outcome.revoke_error if outcome else None,
    )


async def create_connect_link(call: Call) -> Reply:
    options: ConnectLinkOptions = call.body or ConnectLinkOptions()
    user = await _known_user(call)
    link = call.services.links.create(user.id, allow_account_change=options.allow_account_change)
    return ConnectLinkAnswer(
        url=link.url,
        expires_at=link.expires_at.isoformat(),
        allow_account_change=link.allow_account_change,
    )


async def create_call_token(call: Call) -> Reply:
    """The token that makes a user id in call metadata count (see oauth/call_tokens.py)."""
    user = await _known_user(call)
    return CallToken(user_id=user.id, user_token=call.services.call_tokens.issue(user.id))


async def _disconnect_reply(call: Call, *, google_only: bool) -> Reply:
    user = await _known_user(call)
    if google_only:
        connection = await call.services.store.get_connection(user.id)
        if connection is None or connection.provider != GOOGLE:
            raise Refused(404, "the user has no Google connection")
    outcome = await _disconnect(call.services, user.id)
    if outcome is None:
        raise Refused(404, "the user has no calendar connection")
    return Disconnected(
        disconnected=True, revoked=outcome.revoked, revoke_error=outcome.revoke_error or None
    )


async def disconnect_calendar(call: Call) -> Reply:
    """The user's connection, whichever provider."""
    return await _disconnect_reply(call, google_only=False)


async def disconnect_google(call: Call) -> Reply:
    """Only a Google connection (as before Microsoft 365)."""
    return await _disconnect_reply(call, google_only=True)


async def create_api_key(call: Call) -> Reply:
    """A new MCP API key for the user: the key is in this answer and nowhere else, ever."""
    body: NewApiKey = call.body or NewApiKey()
    user_id = call.path["user_id"]
    try:
        issued = await call.services.api_keys.issue(user_id, body.name)
    except NotFound:
        raise Refused(404, "no such user") from None
    record = issued.record
    return IssuedApiKey(
        id=record.id,
        name=record.name,
        created_at=record.created_at.isoformat(),
        user_id=user_id,
        key=issued.key,
    )


async def list_api_keys(call: Call) -> Reply:
    user = await _known_user(call)
    keys = await call.services.store.list_api_keys(user.id)
    return ApiKeyList(user_id=user.id, api_keys=[api_key_info(k) for k in keys])


async def delete_api_key(call: Call) -> Reply:
    if not await call.services.store.delete_api_key(call.path["user_id"], call.path["key_id"]):
        raise Refused(404, "no such API key")
    return None


async def link_assistant(call: Call) -> Reply:
    body: LinkUser = call.body
    assistant_id = call.path["assistant_id"]
    try:
        await call.services.store.link_assistant(assistant_id, body.user_id)
    except NotFound:
        raise Refused(404, f"no user {body.user_id!r}") from None
    return AssistantLink(assistant_id=assistant_id, user_id=body.user_id)


async def unlink_assistant(call: Call) -> Reply:
    if not await call.services.store.unlink_assistant(call.path["assistant_id"]):
        raise Refused(404, "no such assistant link")
    return None


async def link_phone_number(call: Call) -> Reply:
    body: LinkUser = call.body
    phone_number_id = call.path["phone_number_id"]
    try:
        await call.services.store.link_phone_number(phone_number_id, body.user_id)
    except NotFound:
        raise Refused(404, f"no user {body.user_id!r}") from None
    return VapiPhoneNumberLink(phone_number_id=phone_number_id, user_id=body.user_id)


async def unlink_phone_number(call: Call) -> Reply:
    if not await call.services.store.unlink_phone_number(call.path["phone_number_id"]):
        raise Refused(404, "no such phone number link")
    return None


def _platform_link(call: Call) -> tuple[str, LinkKind, str]:
    platform = call.path["platform"]
    if "phone_number" in call.path:
        try:
            number = inputs.platform_phone_number(platform, call.path["phone_number"])
        except ValueError as exc:
            raise BadRequest(f"phoneNumber: {exc}") from None
        return platform, "phoneNumber", number
    return platform, "agent", call.path["agent_id"]


async def put_platform_link(call: Call) -> Reply:
    """Which user a platform's agent (or one of its numbers) acts for. Vapi's are the same links
    as /api/assistants and /api/phone-numbers."""
    body: LinkUser = call.body
    platform, kind, linked = _platform_link(call)
    try:
        await call.services.store.put_link(platform, kind, linked, body.user_id)
    except NotFound:
        raise Refused(404, f"no user {body.user_id!r}") from None
    if kind == "agent":
        return AgentLink(platform=platform, agent_id=linked, user_id=body.user_id)  # type: ignore[arg-type]
    return PhoneNumberLink(platform=platform, phone_number=linked, user_id=body.user_id)  # type: ignore[arg-type]


async def delete_platform_link(call: Call) -> Reply:
    platform, kind, linked = _platform_link(call)
    if not await call.services.store.delete_link(platform, kind, linked):
        raise Refused(404, "no such link")
    return None


# -- the route table ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LinkTo:
    """An OpenAPI link: a value of this answer fills a parameter of another operation."""

    operation_id: str
    parameters: Mapping[str, str]  # parameter → runtime expression, e.g. "$response.body#/id"


@dataclass(frozen=True, slots=True)
class Operation:
    method: str
    path: str
    handler: Callable[[Call], Awaitable[Reply]]
    summary: str
    # The success status and its model (None: an empty 204).
    status: int
    answer: type[Answer] | None
    body: type[BaseModel] | None = None
    body_required: bool = True
    # Refusals besides 400 (a body or checked path parameter) and 401 (every operation).
    refusals: Mapping[int, str] = field(default_factory=dict)
    links: Mapping[str, LinkTo] = field(default_factory=dict)

    @property
    def operation_id(self) -> str:
        head, *rest = self.handler.__name__.split("_")
        return head + "".join(word.capitalize() for word in rest)

    @property
    def path_params(self) -> list[str]:
        return [part[1:-1] for part in self.path.split("/") if part.startswith("{")]

    @property
    def can_be_bad(self) -> bool:
        """Whether a request can be malformed (400): a body, or a path parameter checked."""
        return self.body is not None or any(
            PATH_PARAMS[name].check is not None or name == "phone_number"
            for name in self.path_params
        )


_NO_USER = {404: "no such user"}
_USER = {"user_id": "$response.body#/id"}
_LINKS_OF_A_NEW_USER = {
    "GetUser": LinkTo("getUser", _USER),
    "UpdateUser": LinkTo("updateUser", _USER),
    "CreateConnectLink": LinkTo("createConnectLink", _USER),
    "CreateCallToken": LinkTo("createCallToken", _USER),
    "CreateApiKey": LinkTo("createApiKey", _USER),
    "ListApiKeys": LinkTo("listApiKeys", _USER),
    "DeleteUser": LinkTo("deleteUser", _USER),
}

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "POST",
        "/api/users",
        create_user,
        "Create a user",
        201,
        UserAnswer,
        body=CreateUser,
        refusals={409: "a user with this id exists"},
        links=_LINKS_OF_A_NEW_USER,
    ),
    Operation(
        "GET",
        "/api/users/{user_id}",
        get_user,
        "A user, rules and connection",
        200,
        UserAnswer,
        refusals=_NO_USER,
    ),
    Operation(
        "PATCH",
        "/api/users/{user_id}",
        update_user,
        "Change a user's time zone or booking rules",
        200,
        UserAnswer,
        body=UpdateUser,
        refusals=_NO_USER,
    ),
    Operation(
        "DELETE",
        "/api/users/{user_id}",
        delete_user,
        "Delete a user: revoke at the provider, forget links, keys and tokens",
        200,
        DeletedUser,
        refusals=_NO_USER,
    ),
    Operation(
        "POST",
        "/api/users/{user_id}/connect-link",
        create_connect_link,
        "A signed, single-use link the user opens to connect a calendar",
        201,
        ConnectLinkAnswer,
        body=ConnectLinkOptions,
        body_required=False,
        refusals=_NO_USER,
    ),
    Operation(
        "POST",
        "/api/users/{user_id}/call-token",
        create_call_token,
        "The userToken that makes the user id count in call metadata",
        200,
        CallToken,
        refusals=_NO_USER,
    ),
    Operation(
        "DELETE",
        "/api/users/{user_id}/calendar",
        disconnect_calendar,
        "Disconnect the user's calendar, whichever provider",
        200,
        Disconnected,
        refusals={404: "no such user, or no calendar connection"},
    ),
    Operation(
        "DELETE",
        "/api/users/{user_id}/google",
        disconnect_google,
        "Disconnect the user's Google calendar (only a Google connection)",
        200,
        Disconnected,
        refusals={404: "no such user, or no Google connection"},
    ),
    Operation(
        "POST",
        "/api/users/{user_id}/api-keys",
        create_api_key,
        "A new MCP API key for the user (shown once)",
        201,
        IssuedApiKey,
        body=NewApiKey,
        body_required=False,
        refusals=_NO_USER,
        links={
            "DeleteApiKey": LinkTo(
                "deleteApiKey",
                {"user_id": "$response.body#/userId", "key_id": "$response.body#/id"},
            )
        },
    ),
    Operation(
        "GET",
        "/api/users/{user_id}/api-keys",
        list_api_keys,
        "The user's API keys (ids and names, never the keys)",
        200,
        ApiKeyList,
        refusals=_NO_USER,
    ),
    Operation(
        "DELETE",
        "/api/users/{user_id}/api-keys/{key_id}",
        delete_api_key,
        "Revoke an API key",
        204,
        None,
        refusals={404: "the user has no such key"},
    ),
    Operation(
        "PUT",
        "/api/links/{platform}/{agent_id}",
        put_platform_link,
        "Link a platform's agent to a user",
        200,
        AgentLink,
        body=LinkUser,
        refusals={404: "no such user"},
    ),
    Operation(
        "DELETE",
        "/api/links/{platform}/{agent_id}",
        delete_platform_link,
        "Remove an agent's link",
        204,
        None,
        refusals={404: "not linked"},
    ),
    Operation(
        "PUT",
        "/api/links/{platform}/phone-numbers/{phone_number}",
        put_platform_link,
        "Link a platform's phone number to a user",
        200,
        PhoneNumberLink,
        body=LinkUser,
        refusals={404: "no such user"},
    ),
    Operation(
        "DELETE",
        "/api/links/{platform}/phone-numbers/{phone_number}",
        delete_platform_link,
        "Remove a phone number's link",
        204,
        None,
        refusals={404: "not linked"},
    ),
    Operation(
        "PUT",
        "/api/assistants/{assistant_id}",
        link_assistant,
        "Link a Vapi assistant to a user",
        200,
        AssistantLink,
        body=LinkUser,
        refusals={404: "no such user"},
    ),
    Operation(
        "DELETE",
        "/api/assistants/{assistant_id}",
        unlink_assistant,
        "Remove a Vapi assistant's link",
        204,
        None,
        refusals={404: "not linked"},
    ),
    Operation(
        "PUT",
        "/api/phone-numbers/{phone_number_id}",
        link_phone_number,
        "Link a Vapi phone number (by id) to a user",
        200,
        VapiPhoneNumberLink,
        body=LinkUser,
        refusals={404: "no such user"},
    ),
    Operation(
        "DELETE",
        "/api/phone-numbers/{phone_number_id}",
        unlink_phone_number,
        "Remove a Vapi phone number's link",
        204,
        None,
        refusals={404: "not linked"},
    ),
)


def _endpoint(operation: Operation) -> Callable[[Request, Services], Awaitable[Response]]:
    async def run(request: Request, services: Services) -> Response:
        try:
            path = _path_values(request)
            body = None
            if operation.body is not None:
                raw = await request.body()
                if raw.strip() or operation.body_required:
                    body = _parse_body(raw, operation.body)
            reply = await operation.handler(Call(services, path, body))
        except Refused as exc:
            return json_error(exc.status, str(exc))
        if reply is None:
            return Response(status_code=operation.status)
        return JSONResponse(reply.json_body(), status_code=operation.status)

    return run


def _route(path: str, operations: list[Operation]) -> Route:
    """One Starlette route per path, dispatching on the method, so a method the path does not
    serve is a 405 whose Allow header names every method it does."""
    by_method = {op.method: _endpoint(op) for op in operations}

    async def endpoint(request: Request) -> Response:
        return await by_method[request.method](request, request.app.state.services)

    return Route(path, endpoint, methods=list(by_method))


def _routes() -> list[Route]:
    paths: dict[str, list[Operation]] = {}
    for operation in OPERATIONS:
        paths.setdefault(operation.path, []).append(operation)
    return [_route(path, operations) for path, operations in paths.items()]


async def api_http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404 / 405 under /api as the API's JSON error body (elsewhere: text)."""
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    if request.url.path.startswith(API_PREFIX + "/") or request.url.path == API_PREFIX:
        message = {404: "no such path", 405: "method not allowed"}.get(
            exc.status_code, str(exc.detail)
        )
        response: Response = json_error(exc.status_code, message)
        response.headers.update(headers)
        return response
    if exc.status_code in (204, 304):
        return Response(status_code=exc.status_code, headers=headers)
    return PlainTextResponse(str(exc.detail), status_code=exc.status_code, headers=headers)


routes = _routes()
