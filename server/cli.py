"""The `vapi-calendar` command.

Scriptable: every command takes `--json` (one JSON object on stdout); plain output puts the one
value a script wants on stdout (a URL, a key, a token) and notes for people on stderr. Exit
status: 0 done; 1 not found or refused (no such user, already exists, a server said no); 2 bad
usage or configuration (an option or argument that cannot work, a setting named in one line).
"""

from __future__ import annotations

import asyncio
import errno
import json
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from vapi_calendar.server.config import Settings
    from vapi_calendar.server.services import Services

T = TypeVar("T")


class ConfigurationProblem(click.ClickException):
    """A setting that cannot work: one line naming it, exit status 2, no traceback."""

    exit_code = 2


class Refused(click.ClickException):
    """Not found, or refused: one line saying which, exit status 1."""

    exit_code = 1


def json_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        help="Print the result as one JSON object on stdout (errors stay one line on stderr, "
        "with the exit status).",
    )(command)


def emit(as_json: bool, data: Any, value: str | None = None, note: str | None = None) -> None:
    """The result: `data` as JSON with --json; otherwise `value` (the one thing a script
    wants) on stdout and `note` (for people) on stderr."""
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False))
        return
    if value is not None:
        click.echo(value)
    if note:
        click.echo(note, err=True)


def _settings(**overrides: Any) -> Settings:
    from pydantic import ValidationError

    from vapi_calendar.server.config import Settings
    from vapi_calendar.support.validation import first_error

    try:
        return Settings(**overrides)
    except ValidationError as exc:
        error = first_error(exc)
        raise ConfigurationProblem(
            f"configuration: {error.dotted(empty='settings').upper()}: {error.reason}"
        ) from None


def _checked(value: str, check: Callable[[str], str], param: str) -> str:
    try:
        return check(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=param) from None


def _with_services(work: Callable[[Services], Awaitable[T]]) -> T:
    """Run `work(services)` against the configured store, for one-off admin commands."""
    from vapi_calendar.server.services import ConfigError, open_services

    async def main() -> T:
        try:
            services = await open_services(_settings())
        except ConfigError as exc:
            raise ConfigurationProblem(str(exc)) from None
        try:
            return await work(services)
        finally:
            await services.close()

    return asyncio.run(main())


@click.group()
def main() -> None:
    """Per-user Google Calendar and Microsoft 365 / Outlook tools for voice assistants
    (Vapi, Retell, ElevenLabs, MCP)."""


def _listening_socket(host: str, port: int) -> socket.socket:
    """The server's socket, bound before anything else happens: a busy port stops `serve` with
    one line (exit 2) before the data directory is touched, so a second `make run` cannot
    disturb the first one's demo users."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigurationProblem(
                f"port {port} on {host} is in use (is another vapi-calendar running?): stop it "
                "or choose another --port"
            ) from None
        raise ConfigurationProblem(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return sock


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@json_option
def serve(host: str, port: int, as_json: bool) -> None:
    """Run the webhook server. With --json, once it answers: one JSON object on stdout with its
    URL (and in demo mode the admin token and the banner's commands)."""

    from vapi_calendar.server.app import create_app
    from vapi_calendar.server.http_server import AppServer, uvicorn_config
    from vapi_calendar.server.logs import configure_logging
    from vapi_calendar.server.services import ConfigError, preflight

    sock = _listening_socket(host, port)
    port = sock.getsockname()[1]  # --port 0: the one the system chose
    settings = _settings()
    if "public_url" not in settings.model_fields_set:
        # Demo mode's emulator lives on this server, so its URL must be where we listen.
        shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
        if ":" in shown_host:
            shown_host = f"[{shown_host}]"
        settings = _settings(public_url=f"http://{shown_host}:{port}")
    configure_logging(settings.log_level, settings.log_format)
    try:
        asyncio.run(preflight(settings))
    except ConfigError as exc:
        raise ConfigurationProblem(str(exc)) from None
    config = uvicorn_config(
        create_app(settings, announce_json=as_json),
        read_timeout_seconds=settings.request_read_timeout_seconds,
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
        # uvicorn's access log prints full URLs (connect tokens, OAuth codes); ours redacts.
        access_log=False,
        # Logging is ours (JSON): uvicorn's own lines go through the root logger too.
        log_config=None,
        # On SIGTERM: stop accepting, let in-flight tool calls finish within their budget.
        timeout_graceful_shutdown=int(settings.tool_budget_seconds) + 5,
    )
    # uvicorn ends a server stopped by SIGTERM by raising the signal again once it has shut
    # down, under the handler it found at start: this one, which writes the queued log lines
    # first (an exit by signal runs no exit hooks), then lets the signal end the process.
    # Installed last, so that it runs only then, never while this thread is logging.
    signal.signal(signal.SIGTERM, _drain_logs_then_terminate)
    AppServer(config).run(sockets=[sock])


def _drain_logs_then_terminate(signum: int, _frame: object) -> None:
    from vapi_calendar.server.logs import drain

    drain()
    signal.signal(signum, signal.SIG_DFL)
    signal.raise_signal(signum)


@main.command("generate-key")
@json_option
def generate_key(as_json: bool) -> None:
    """Print a fresh ENCRYPTION_KEY."""
    from vapi_calendar.oauth.vault import generate_key as new_key

    key = new_key()
    emit(as_json, {"key": key}, key)


@main.command("create-user")
@click.argument("user_id")
@click.option("--timezone", default=None, help="IANA time zone, e.g. America/New_York")
@json_option
def create_user(user_id: str, timezone: str | None, as_json: bool) -> None:
    """Create a user (same as POST /api/users); prints its id."""
    from vapi_calendar.ports.stores import AlreadyExists
    from vapi_calendar.server import inputs
    from vapi_calendar.server.admin import new_user, user_answer

    _checked(user_id, inputs.user_id, "USER_ID")
    if timezone:
        _checked(timezone, inputs.timezone, "--timezone")

    async def work(services: Services) -> dict[str, Any]:
        user = new_user(user_id, timezone, services.settings.default_timezone)
        try:
            await services.store.create_user(user)
        except AlreadyExists:
            raise Refused(f"user {user_id!r} already exists") from None
        return user_answer(user, None, services.vault).json_body()

    emit(as_json, _with_services(work), user_id, f"created user {user_id}")


@main.command("link-assistant")
@click.argument("assistant_id")
@click.argument("user_id")
@json_option
def link_assistant(assistant_id: str, user_id: str, as_json: bool) -> None:
    """Link a Vapi assistant to a user (same as PUT /api/assistants/{id})."""
    from vapi_calendar.ports.stores import NotFound
    from vapi_calendar.server import inputs

    _checked(assistant_id, inputs.linked_id, "ASSISTANT_ID")
    _checked(user_id, inputs.user_id, "USER_ID")

    async def work(services: Services) -> None:
        try:
            await services.store.link_assistant(assistant_id, user_id)
        except NotFound:
            raise Refused(f"no user {user_id!r}") from None

    _with_services(work)
    emit(
        as_json,
        {"assistantId": assistant_id, "userId": user_id},
        note=f"linked {assistant_id} -> {user_id}",
    )


@main.command("link-phone-number")
@click.argument("phone_number_id")
@click.argument("user_id")
@json_option
def link_phone_number(phone_number_id: str, user_id: str, as_json: bool) -> None:
    """Link a Vapi phone number (its id) to a user (same as PUT /api/phone-numbers/{id})."""
    from vapi_calendar.ports.stores import NotFound
    from vapi_calendar.server import inputs

    _checked(phone_number_id, inputs.linked_id, "PHONE_NUMBER_ID")
    _checked(user_id, inputs.user_id, "USER_ID")

    async def work(services: Services) -> None:
        try:
            await services.store.link_phone_number(phone_number_id, user_id)
        except NotFound:
            raise Refused(f"no user {user_id!r}") from None

    _with_services(work)
    emit(
        as_json,
        {"phoneNumberId": phone_number_id, "userId": user_id},
        note=f"linked phone number {phone_number_id} -> {user_id}",
    )


@main.command("unlink-phone-number")
@click.argument("phone_number_id")
@json_option
def unlink_phone_number(phone_number_id: str, as_json: bool) -> None:
    """Remove a phone number's link (same as DELETE /api/phone-numbers/{id})."""

    async def work(services: Services) -> bool:
        return await services.store.unlink_phone_number(phone_number_id)

    if not _with_services(work):
        raise Refused(f"phone number {phone_number_id!r} is not linked")
    emit(
        as_json,
        {"phoneNumberId": phone_number_id, "unlinked": True},
        note=f"unlinked phone number {phone_number_id}",
    )


@main.command("link")
@click.argument("platform", type=click.Choice(["vapi", "retell", "elevenlabs"]))
@click.argument("agent_id")
@click.argument("user_id")
@click.option(
    "--phone-number",
    is_flag=True,
    help="AGENT_ID is a phone number: Vapi's phone-number id, or Retell's / ElevenLabs' "
    "number in E.164.",
)
@json_option
def link(platform: str, agent_id: str, user_id: str, phone_number: bool, as_json: bool) -> None:
    """Link a platform's agent (or phone number) to a user (same as PUT /api/links/...)."""
    from vapi_calendar.ports.stores import NotFound
    from vapi_calendar.server import inputs

    kind, linked = _link_key(platform, agent_id, phone_number)
    _checked(user_id, inputs.user_id, "USER_ID")

    async def work(services: Services) -> None:
        try:
            await services.store.put_link(platform, kind, linked, user_id)
        except NotFound:
            raise Refused(f"no user {user_id!r}") from None

    _with_services(work)
    key = "phoneNumber" if phone_number else "agentId"
    emit(
        as_json,
        {"platform": platform, key: linked, "userId": user_id},
        note=f"linked {platform} {linked} -> {user_id}",
    )


@main.command("unlink")
@click.argument("platform", type=click.Choice(["vapi", "retell", "elevenlabs"]))
@click.argument("agent_id")
@click.option("--phone-number", is_flag=True, help="AGENT_ID is a phone number (see link).")
@json_option
def unlink(platform: str, agent_id: str, phone_number: bool, as_json: bool) -> None:
    """Remove a platform link (same as DELETE /api/links/...)."""
    kind, linked = _link_key(platform, agent_id, phone_number)

    async def work(services: Services) -> bool:
        return await services.store.delete_link(platform, kind, linked)

    if not _with_services(work):
        raise Refused(f"{platform} {linked!r} is not linked")
    key = "phoneNumber" if phone_number else "agentId"
    emit(
        as_json,
        {"platform": platform, key: linked, "unlinked": True},
        note=f"unlinked {platform} {linked}",
    )


def _link_key(platform: str, agent_id: str, phone_number: bool) -> tuple[Any, str]:
    from vapi_calendar.server import inputs

    if phone_number:
        check = lambda value: inputs.platform_phone_number(platform, value)  # noqa: E731
        return "phoneNumber", _checked(agent_id, check, "AGENT_ID")
    return "agent", _checked(agent_id, inputs.linked_id, "AGENT_ID")


@main.command("create-api-key")
@click.argument("user_id")
@click.option("--name", default="", help="A label to tell the user's keys apart.")
@json_option
def create_api_key(user_id: str, name: str, as_json: bool) -> None:
    """Print a new MCP API key for USER_ID (shown once; only its digest is stored)."""
    from vapi_calendar.ports.stores import NotFound
    from vapi_calendar.server import inputs
    from vapi_calendar.server.admin import api_key_json

    _checked(user_id, inputs.user_id, "USER_ID")
    _checked(name, inputs.key_name, "--name")

    async def work(services: Services) -> dict[str, Any]:
        try:
            issued = await services.api_keys.issue(user_id, name)
        except NotFound:
            raise Refused(f"no user {user_id!r}") from None
        return {**api_key_json(issued.record), "userId": user_id, "key": issued.key}

    issued = _with_services(work)
    emit(
        as_json,
        issued,
        issued["key"],
        f"(id {issued['id']}; the key is not stored and cannot be shown again)",
    )


@main.command("list-api-keys")
@click.argument("user_id")
@json_option
def list_api_keys(user_id: str, as_json: bool) -> None:
    """List USER_ID's API keys (ids and names, never the keys): one per line, id, name and
    creation time separated by tabs."""

    async def work(services: Services) -> list[dict[str, str]]:
        from vapi_calendar.server.admin import api_key_json

        if await services.store.get_user(user_id) is None:
            raise Refused(f"no user {user_id!r}")
        return [api_key_json(k) for k in await services.store.list_api_keys(user_id)]

    keys = _with_services(work)
    lines = "\n".join(f"{k['id']}\t{k['name']}\t{k['createdAt']}" for k in keys)
    emit(
        as_json,
        {"userId": user_id, "apiKeys": keys},
        lines or None,
        None if keys else f"{user_id} has no API keys",
    )


@main.command("delete-api-key")
@click.argument("user_id")
@click.argument("key_id")
@json_option
def delete_api_key(user_id: str, key_id: str, as_json: bool) -> None:
    """Revoke one of USER_ID's API keys."""

    async def work(services: Services) -> bool:
        return await services.store.delete_api_key(user_id, key_id)

    if not _with_services(work):
        raise Refused(f"user {user_id!r} has no API key {key_id!r}")
    emit(as_json, {"id": key_id, "userId": user_id, "revoked": True}, note=f"revoked {key_id}")


@main.command("connect-link")
@click.argument("user_id")
@click.option(
    "--allow-account-change",
    is_flag=True,
    help="The link may connect a different account (or provider) than the one connected now.",
)
@json_option
def connect_link(user_id: str, allow_account_change: bool, as_json: bool) -> None:
    """Print a signed, expiring, single-use link the user opens to connect their calendar
    (its expiry, the link's own, goes to stderr; with --json both, as the admin API)."""
    from vapi_calendar.server import inputs

    _checked(user_id, inputs.user_id, "USER_ID")

    async def work(services: Services) -> dict[str, Any]:
        if await services.store.get_user(user_id) is None:
            raise Refused(f"no user {user_id!r}")
        link = services.links.create(user_id, allow_account_change=allow_account_change)
        return {
            "url": link.url,
            "expiresAt": link.expires_at.isoformat(),
            "allowAccountChange": link.allow_account_change,
        }

    made = _with_services(work)
    emit(as_json, made, made["url"], f"(expires {made['expiresAt']})")


@main.command("call-token")
@click.argument("user_id")
@json_option
def call_token(user_id: str, as_json: bool) -> None:
    """Print the token that makes USER_ID count in call metadata (metadata.userToken)."""
    from vapi_calendar.server import inputs

    _checked(user_id, inputs.user_id, "USER_ID")

    async def work(services: Services) -> str:
        if await services.store.get_user(user_id) is None:
            raise Refused(f"no user {user_id!r}")
        return services.call_tokens.issue(user_id)

    token = _with_services(work)
    emit(as_json, {"userId": user_id, "userToken": token}, token)


@main.command("rotate-key")
@json_option
def rotate_key(as_json: bool) -> None:
    """Re-encrypt every stored token with the first ENCRYPTION_KEY.

    Put the new key first and keep the old ones after it, run this, then drop the old keys.
    """

    async def work(services: Services) -> tuple[int, list[str]]:
        return await services.grants.rotate_encryption()

    rotated, unreadable = _with_services(work)
    emit(
        as_json,
        {"rotated": rotated, "unreadable": unreadable},
        str(rotated),
        f"re-encrypted the tokens of {rotated} user(s)",
    )
    if unreadable:
        raise Refused(
            f"{len(unreadable)} user(s) have tokens no configured key can decrypt "
            f"({', '.join(unreadable[:10])}); keep the old key in ENCRYPTION_KEY (after the new "
            "one) and run rotate-key again"
        )


@main.command("set-rules")
@click.argument("user_id")
@click.option(
    "--file",
    "path",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help='JSON object of rules to change (same as PATCH /api/users/{id} "rules").',
)
@click.option("--timezone", default=None, help="Also set the user's IANA time zone.")
@json_option
def set_rules(user_id: str, path: str, timezone: str | None, as_json: bool) -> None:
    """Change a user's booking rules (merged into the current ones) and print the result."""
    from vapi_calendar.ports.stores import NotFound
    from vapi_calendar.server import inputs
    from vapi_calendar.server.admin import effective_rules, updated_rules
    from vapi_calendar.tools.rules import RulesError

    _checked(user_id, inputs.user_id, "USER_ID")
    if timezone:
        _checked(timezone, inputs.timezone, "--timezone")
    try:
        patch = json.loads(Path(path).read_text())
    except ValueError as exc:
        raise click.BadParameter(f"{path}: not valid JSON ({exc})", param_hint="--file") from None

    async def work(services: Services) -> dict:
        user = await services.store.get_user(user_id)
        if user is None:
            raise Refused(f"no user {user_id!r}")
        try:
            rules = updated_rules(user, timezone, patch)
        except RulesError as exc:
            raise Refused(str(exc)) from None
        try:
            user = await services.store.update_user(user_id, timezone=timezone, rules=rules)
        except NotFound:
            raise Refused(f"no user {user_id!r}") from None
        return {"id": user.id, "timezone": user.timezone, "rules": effective_rules(user)}

    updated = _with_services(work)
    # The value is the rules themselves: JSON either way (one line with --json).
    emit(as_json, updated, json.dumps(updated, indent=2))


@main.command("vapi-tools")
@click.option(
    "--server-url",
    required=True,
    help="This server's public URL (the webhook path /vapi/webhook is added if missing).",
)
@click.option("--credential-id", default=None, help="Vapi credential that authenticates webhooks.")
@click.option(
    "--timezone",
    default="UTC",
    show_default=True,
    help="The user's IANA time zone, for the system-prompt snippet's current date.",
)
@click.option("--timeout-seconds", default=20, show_default=True, type=click.IntRange(1, 300))
@click.option(
    "--strict",
    is_flag=True,
    help="Schemas valid under function.strict (every property required, optionals nullable).",
)
@click.option(
    "--auth",
    type=click.Choice(["auto", "hmac", "oauth2", "bearer", "none"]),
    default="auto",
    show_default=True,
    help="Which configured webhook credential to print as `credential` (a body for Vapi's "
    "POST /credential; it contains the secret). auto: hmac, else oauth2, else bearer.",
)
@click.option(
    "--mcp",
    "as_mcp",
    is_flag=True,
    help="Print one Vapi MCP tool for this server's /mcp instead (one per user: give the "
    "user's --api-key, or a --credential-id that sends it).",
)
@click.option("--api-key", default=None, help="With --mcp: the user's API key (a secret).")
@json_option
def vapi_tools(
    server_url: str,
    credential_id: str | None,
    timezone: str,
    timeout_seconds: int,
    strict: bool,
    auth: str,
    as_mcp: bool,
    api_key: str | None,
    as_json: bool,
) -> None:
    """Print Vapi tool definitions (bodies for POST /tool), a system-prompt snippet and the
    webhook credential (a body for POST /credential) matching this server's settings."""
    from vapi_calendar.server import inputs
    from vapi_calendar.server.services import bearer_plan, hmac_plan, oauth2_client
    from vapi_calendar.server.vapi.credentials import credential_body
    from vapi_calendar.server.vapi.tool_definitions import system_prompt
    from vapi_calendar.server.vapi.tool_definitions import vapi_tools as definitions

    _checked(timezone, inputs.timezone, "--timezone")
    if as_mcp:
        from vapi_calendar.server.mcp.tool_definitions import vapi_mcp_tool

        if not (api_key or credential_id):
            raise click.UsageError("--mcp needs the user's --api-key or a --credential-id")
        try:
            tool = vapi_mcp_tool(
                server_url,
                api_key=api_key,
                credential_id=credential_id,
                timeout_seconds=timeout_seconds,
            )
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--server-url") from None
        _document(as_json, {"tools": [tool], "systemPrompt": system_prompt(timezone)})
        return
    try:
        output = definitions(
            server_url,
            credential_id=credential_id,
            timezone=timezone,
            timeout_seconds=timeout_seconds,
            strict=strict,
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--server-url") from None
    if auth != "none":
        settings = _settings()
        configured = {
            "hmac": hmac_plan(settings),
            "oauth2": oauth2_client(settings),
            "bearer": bearer_plan(settings),
        }
        names = [name for name, plan in configured.items() if plan is not None]
        chosen = names[0] if auth == "auto" and names else auth
        plan = configured.get(chosen)
        if plan is not None:
            output["credential"] = credential_body(plan, server_url)
        elif auth != "auto":
            raise ConfigurationProblem(f"no {auth} webhook credential is configured")
    _document(as_json, output)


@main.command("retell-tools")
@click.option("--server-url", required=True, help="This server's public URL.")
@click.option(
    "--timezone",
    default="UTC",
    show_default=True,
    help="The user's IANA time zone, for the prompt snippet's current time.",
)
@click.option(
    "--args-at-root",
    is_flag=True,
    help="Retell's 'Payload: args only': the call travels in headers Retell fills.",
)
@click.option("--agent-id", default=None, help="With --args-at-root: the agent, as a header.")
@click.option("--timeout-ms", default=20_000, show_default=True, type=click.IntRange(1000, 600_000))
@json_option
def retell_tools(
    server_url: str,
    timezone: str,
    args_at_root: bool,
    agent_id: str | None,
    timeout_ms: int,
    as_json: bool,
) -> None:
    """Print Retell custom functions (`general_tools` of a Retell LLM) and a prompt snippet."""
    from vapi_calendar.server import inputs
    from vapi_calendar.server.retell.tool_definitions import retell_tools as definitions

    _checked(timezone, inputs.timezone, "--timezone")
    if agent_id is not None:
        _checked(agent_id, inputs.linked_id, "--agent-id")
    try:
        output = definitions(
            server_url,
            timezone=timezone,
            args_at_root=args_at_root,
            agent_id=agent_id,
            timeout_ms=timeout_ms,
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--server-url") from None
    _document(as_json, output)


@main.command("elevenlabs-tools")
@click.option("--server-url", required=True, help="This server's public URL.")
@click.option(
    "--secret-id",
    required=True,
    help="The ElevenLabs workspace secret whose value is 'Bearer <ELEVENLABS_TOOL_SECRET>'.",
)
@click.option("--timeout-seconds", default=20, show_default=True, type=click.IntRange(5, 300))
@json_option
def elevenlabs_tools(server_url: str, secret_id: str, timeout_seconds: int, as_json: bool) -> None:
    """Print ElevenLabs webhook tools (bodies for POST /v1/convai/tools)."""
    from vapi_calendar.server.elevenlabs.tool_definitions import elevenlabs_tools as definitions

    try:
        output = definitions(server_url, secret_id=secret_id, timeout_seconds=timeout_seconds)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--server-url") from None
    _document(as_json, output)


def _document(as_json: bool, document: Any) -> None:
    """Commands whose value is a JSON document: indented for reading, one line with --json."""
    emit(as_json, document, json.dumps(document, indent=2))


def _signed_headers(
    body: bytes, url: str, secret: str | None, hmac_secret: str | None
) -> dict[str, str]:
    """Headers as Vapi would send them: the legacy secret header, and an HMAC signature made
    with the configured plan (VAPI_HMAC_* settings) and `hmac_secret`."""
    import uuid
    from dataclasses import replace

    from vapi_calendar.server.services import hmac_plan
    from vapi_calendar.server.vapi.auth import LEGACY_SECRET_HEADER, HmacPlan

    headers = {"content-type": "application/json"}
    if secret:
        headers[LEGACY_SECRET_HEADER] = secret
    if hmac_secret:
        plan = replace(
            hmac_plan(_settings()) or HmacPlan(secret_key=hmac_secret), secret_key=hmac_secret
        )
        headers |= plan.headers(
            body, timestamp=str(int(time.time())), url=url, message_id=f"msg_{uuid.uuid4().hex}"
        )
    return headers


def _platform_request(
    platform: str,
    name: str,
    body: bytes,
    url: str,
    retell_api_key: str | None,
    tool_secret: str | None,
) -> tuple[str, dict[str, str]]:
    """Where a Retell or ElevenLabs fixture goes and the headers the platform would send. The
    tool is the file name's first part (`checkAvailability.phone_call.json`), unless `url`
    already names one."""
    from vapi_calendar.server.elevenlabs.tools import TOOLS_PATH
    from vapi_calendar.server.retell.functions import FUNCTIONS_PATH, SIGNATURE_HEADER
    from vapi_calendar.support.signing import retell_signature

    path = FUNCTIONS_PATH if platform == "retell" else TOOLS_PATH
    base = url.rstrip("/")
    if f"{path}/" not in base:
        base = f"{base}{path}/{Path(name).name.split('.')[0]}"
    headers = {"content-type": "application/json"}
    if platform == "retell" and retell_api_key:
        now_ms = int(time.time() * 1000)
        headers[SIGNATURE_HEADER] = retell_signature(body, retell_api_key, now_ms)
    if platform == "elevenlabs" and tool_secret:
        headers["authorization"] = f"Bearer {tool_secret}"
    return base, headers


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--url",
    required=True,
    help="Vapi: the webhook URL, e.g. http://127.0.0.1:8000/vapi/webhook. Retell, ElevenLabs: "
    "the server's URL (the tool is the file name's first part) or one tool's URL.",
)
@click.option(
    "--platform",
    type=click.Choice(["vapi", "retell", "elevenlabs"]),
    default="vapi",
    show_default=True,
    help="Whose requests the files are.",
)
@click.option("--secret", envvar="VAPI_SECRET", default=None, help="Sent as X-Vapi-Secret.")
@click.option("--hmac-secret", envvar="VAPI_HMAC_SECRET", default=None, help="Signs the body.")
@click.option(
    "--retell-api-key",
    envvar="RETELL_API_KEY",
    default=None,
    help="Retell: signs each body as X-Retell-Signature.",
)
@click.option(
    "--tool-secret",
    envvar="ELEVENLABS_TOOL_SECRET",
    default=None,
    help="ElevenLabs: sent as Authorization: Bearer <secret>.",
)
@click.option(
    "--relative-to-now",
    is_flag=True,
    help="Move every local date in the files by the same whole number of weeks, so the "
    "earliest is 2-8 days from today (the fixtures ask about 2031): weekdays and times stay.",
)
@json_option
def replay(
    files: tuple[str, ...],
    url: str,
    platform: str,
    secret: str | None,
    hmac_secret: str | None,
    retell_api_key: str | None,
    tool_secret: str | None,
    relative_to_now: bool,
    as_json: bool,
) -> None:
    """POST recorded platform requests (fixtures) to a live server and print what it answers:
    each answer's JSON on stdout, "== FILE: HTTP status" on stderr. Exit status 1 if any
    answer was not a 200 (or the server could not be reached)."""
    from datetime import UTC, datetime

    import httpx

    from vapi_calendar.server import replay as moved

    texts = {name: Path(name).read_text(encoding="utf-8") for name in files}
    if relative_to_now:
        weeks = moved.weeks_to_now(texts.values(), datetime.now(UTC).date())
        texts = {name: moved.shifted(text, weeks) for name, text in texts.items()}
    answers: list[dict[str, Any]] = []
    with httpx.Client(timeout=30) as client:
        for name, text in texts.items():
            body = text.encode()
            if platform == "vapi":
                target, headers = url, _signed_headers(body, url, secret, hmac_secret)
            else:
                target, headers = _platform_request(
                    platform, name, body, url, retell_api_key, tool_secret
                )
            try:
                response = client.post(target, content=body, headers=headers)
            except httpx.HTTPError as exc:
                raise Refused(f"{name}: {exc}") from None
            try:
                answer: Any = response.json()
            except ValueError:
                answer = response.text
            answers.append({"file": name, "status": response.status_code, "answer": answer})
            if not as_json:
                click.echo(f"== {name}: HTTP {response.status_code}", err=True)
                click.echo(json.dumps(answer, indent=2) if not isinstance(answer, str) else answer)
    if as_json:
        click.echo(json.dumps({"answers": answers}, ensure_ascii=False))
    sys.exit(1 if any(a["status"] != 200 for a in answers) else 0)


if __name__ == "__main__":
    main()
