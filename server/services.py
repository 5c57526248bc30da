"""The composition root: every adapter chosen and wired, once per app, in its lifespan.

The only module that knows every layer: it picks the store backend and the calendar providers
(Google, Microsoft 365, or both) from the settings and hands them, as ports, to the pipeline and
the connection flow.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from vapi_calendar.oauth.api_keys import ApiKeys
from vapi_calendar.oauth.call_tokens import CallTokens
from vapi_calendar.oauth.consent import ConsentFlow
from vapi_calendar.oauth.grants import ConnectedCalendars, Grants
from vapi_calendar.oauth.links import ConnectLinks
from vapi_calendar.oauth.readability import CalendarReadability
from vapi_calendar.oauth.registry import Provider, Providers
from vapi_calendar.oauth.vault import TokenVault, VaultError, load_or_create_key_file
from vapi_calendar.pipeline.pipeline import Limits, ToolPipeline
from vapi_calendar.ports.clock import Clock, system_clock
from vapi_calendar.ports.stores import GOOGLE, MICROSOFT, Store, StoreError
from vapi_calendar.providers.google.calendar import GoogleCalendarApi
from vapi_calendar.providers.google.endpoints import GoogleEndpoints
from vapi_calendar.providers.google.http import GoogleHttp
from vapi_calendar.providers.google.oauth import GoogleOAuth
from vapi_calendar.providers.google.threads import GoogleThreads
from vapi_calendar.providers.microsoft.calendar import MicrosoftCalendarApi
from vapi_calendar.providers.microsoft.endpoints import MicrosoftEndpoints
from vapi_calendar.providers.microsoft.http import MicrosoftHttp
from vapi_calendar.providers.microsoft.oauth import MicrosoftOAuth
from vapi_calendar.server.config import Settings
from vapi_calendar.server.notify import ConnectionNotifier
from vapi_calendar.server.vapi.auth import BearerPlan, HmacPlan, WebhookAuthenticator
from vapi_calendar.server.vapi.oauth2 import OAuth2Client, WebhookTokens
from vapi_calendar.stores import store_from_url
from vapi_calendar.support.leases import Leases
from vapi_calendar.support.metrics import Metrics

log = logging.getLogger(__name__)


class ConfigError(Exception):
    """The configuration cannot work; the message says what to set."""


@dataclass(slots=True)
class Services:
    settings: Settings
    metrics: Metrics
    store: Store
    vault: TokenVault
    threads: GoogleThreads
    google_http: GoogleHttp
    microsoft_http: MicrosoftHttp
    providers: Providers
    grants: Grants
    consent: ConsentFlow
    links: ConnectLinks
    notifier: ConnectionNotifier
    call_tokens: CallTokens
    pipeline: ToolPipeline
    webhook_auth: WebhookAuthenticator
    webhook_tokens: WebhookTokens | None
    # Per-user API keys: the MCP endpoint's credential.
    api_keys: ApiKeys
    # The admin API's bearer token: ADMIN_TOKEN, or in demo mode one generated for it. None:
    # the admin API refuses everything (fail closed).
    admin_token: str | None = None

    async def close(self) -> None:
        await self.notifier.aclose()
        await self.google_http.close()
        await self.microsoft_http.close()
        self.threads.shutdown()
        await self.store.close()


def embedded_data_dir(settings: Settings) -> Path | None:
    """The directory of the SQLite file, where the embedded default keeps its key."""
    if settings.database_url.startswith("sqlite:///"):
        return Path(settings.database_url.removeprefix("sqlite:///")).parent
    return None


def load_vault(settings: Settings) -> TokenVault:
    try:
        return _load_vault(settings)
    except VaultError as exc:
        raise ConfigError(str(exc)) from None
    except OSError as exc:
        # The embedded default keeps its key next to the database file.
        raise ConfigError(
            f"DATABASE_URL: cannot keep the encryption key in {exc.filename}: {exc.strerror}"
        ) from None


def _load_vault(settings: Settings) -> TokenVault:
    if settings.encryption_key is not None:
        return TokenVault.from_setting(settings.encryption_key.get_secret_value())
    data_dir = embedded_data_dir(settings)
    if data_dir is None:
        raise ConfigError(
            "ENCRYPTION_KEY is required with this DATABASE_URL; "
            "generate one with: vapi-calendar generate-key"
        )
    key_file = data_dir / "encryption.key"
    key, created = load_or_create_key_file(key_file)
    if created:
        log.warning(
            "generated an encryption key at %s (mode 0600); back it up with the database, "
            "or set ENCRYPTION_KEY",
            key_file,
        )
    return TokenVault.from_setting(key)


ADMIN_TOKEN_FILE = "admin.token"  # noqa: S105 - a file name


def admin_token(settings: Settings) -> str | None:
    """ADMIN_TOKEN if set; in demo mode only, a generated one kept (mode 0600) next to the
    encryption key, so the demo's printed commands keep working across restarts. Outside demo
    mode nothing is generated: without ADMIN_TOKEN the admin API refuses everything."""
    if settings.admin_token is not None:
        return settings.admin_token.get_secret_value()
    if not settings.demo_mode:
        return None
    data_dir = embedded_data_dir(settings)
    if data_dir is None:  # no data directory (a demo on MongoDB): this process's own
        return secrets.token_urlsafe(32)
    try:
        token, _ = load_or_create_key_file(
            data_dir / ADMIN_TOKEN_FILE, make=lambda: secrets.token_urlsafe(32)
        )
    except OSError as exc:
        raise ConfigError(
            f"DATABASE_URL: cannot keep the demo admin token in {exc.filename}: {exc.strerror}"
        ) from None
    return token


def check_settings(settings: Settings) -> None:
    if settings.google_client_id is not None and settings.google_client_secret is None:
        raise ConfigError("GOOGLE_CLIENT_SECRET is required when GOOGLE_CLIENT_ID is set")
    if settings.microsoft_client_id is not None and settings.microsoft_client_secret is None:
        raise ConfigError("MICROSOFT_CLIENT_SECRET is required when MICROSOFT_CLIENT_ID is set")
    if settings.connection_webhook_url and settings.connection_webhook_secret is None:
        raise ConfigError("CONNECTION_WEBHOOK_SECRET is required with CONNECTION_WEBHOOK_URL")
    if (settings.vapi_oauth2_client_id is None) != (settings.vapi_oauth2_client_secret is None):
        raise ConfigError("VAPI_OAUTH2_CLIENT_ID and VAPI_OAUTH2_CLIENT_SECRET go together")
    plan = hmac_plan(settings)
    if plan is not None and (problems := plan.problems()):
        # Vapi's field names → ours: payloadFormat → VAPI_HMAC_PAYLOAD_FORMAT, …
        raise ConfigError(f"VAPI_HMAC_* settings: {problems[0]}")


def bearer_plan(settings: Settings) -> BearerPlan | None:
    if settings.vapi_secret is None:
        return None
    return BearerPlan(
        token=settings.vapi_secret.get_secret_value(),
        header_name=settings.vapi_bearer_header_name,
        bearer_prefix_enabled=settings.vapi_bearer_prefix_enabled,
    )


def hmac_plan(settings: Settings) -> HmacPlan | None:
    if settings.vapi_hmac_secret is None:
        return None
    return HmacPlan(
        secret_key=settings.vapi_hmac_secret.get_secret_value(),
        algorithm=settings.vapi_hmac_algorithm,
        signature_header=settings.vapi_hmac_signature_header,
        timestamp_header=settings.vapi_hmac_timestamp_header,
        signature_prefix=settings.vapi_hmac_signature_prefix,
        include_timestamp=settings.vapi_hmac_include_timestamp,
        payload_format=settings.vapi_hmac_payload_format,
        message_id_header=settings.vapi_hmac_message_id_header,
        signature_encoding=settings.vapi_hmac_signature_encoding,
        secret_is_base64=settings.vapi_hmac_secret_is_base64,
    )


def oauth2_client(settings: Settings) -> OAuth2Client | None:
    if settings.vapi_oauth2_client_id is None or settings.vapi_oauth2_client_secret is None:
        return None
    return OAuth2Client(
        client_id=settings.vapi_oauth2_client_id,
        client_secret=settings.vapi_oauth2_client_secret.get_secret_value(),
        scope=settings.vapi_oauth2_scope,
    )


async def preflight(settings: Settings) -> None:
    """Everything about the configuration that can be known before serving: raises ConfigError
    with one line naming the setting, so a bad deployment stops at once instead of failing in
    the middle of starting."""
    check_settings(settings)
    try:
        store = store_from_url(settings.database_url)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    load_vault(settings)
    try:
        await store.open()
    except (StoreError, OSError) as exc:
        raise ConfigError(f"DATABASE_URL: the database cannot be opened ({exc})") from None
    finally:
        await store.close()


def warn_about_open_doors(settings: Settings, auth: WebhookAuthenticator) -> None:
    if auth.configured:
        return
    if settings.demo_mode:
        log.warning("demo mode: webhooks are accepted without authentication")
    else:
        log.warning(
            "no webhook secret is set (VAPI_SECRET or VAPI_HMAC_SECRET): "
            "every tool call will be refused with 401"
        )


def calendar_providers(
    settings: Settings,
    metrics: Metrics,
    threads: GoogleThreads,
    google_http: GoogleHttp,
    microsoft_http: MicrosoftHttp,
) -> Providers:
    """The providers this deployment offers: each one whose client is configured (both in demo
    mode, played by the bundled emulator)."""
    offered: list[Provider] = []
    if settings.google_enabled:
        endpoints = GoogleEndpoints.for_base(settings.google_base_url)
        offered.append(
            Provider(
                name=GOOGLE,
                vendor="Google",
                label="Google Calendar",
                oauth=GoogleOAuth(
                    endpoints=endpoints,
                    client_id=settings.client_id,
                    client_secret=settings.client_secret,
                    scopes=settings.scopes,
                    redirect_uri=f"{settings.public_url}/oauth/google/callback",
                    threads=threads,
                ),
                calendars=GoogleCalendarApi(google_http, endpoints.calendar_api, metrics),
            )
        )
    if settings.microsoft_enabled:
        ms = MicrosoftEndpoints.for_base(settings.microsoft_base_url, settings.microsoft_tenant)
        offered.append(
            Provider(
                name=MICROSOFT,
                vendor="Microsoft",
                label="Microsoft 365 / Outlook",
                oauth=MicrosoftOAuth(
                    endpoints=ms,
                    client_id=settings.microsoft_app_id,
                    client_secret=settings.microsoft_app_secret,
                    redirect_uri=f"{settings.public_url}/oauth/microsoft/callback",
                    http=microsoft_http,
                ),
                calendars=MicrosoftCalendarApi(
                    microsoft_http,
                    ms.graph,
                    metrics,
                    tentative_is_busy=settings.microsoft_tentative_is_busy,
                ),
            )
        )
    return Providers(offered)


async def open_services(
    settings: Settings, *, clock: Clock = system_clock, metrics: Metrics | None = None
) -> Services:
    check_settings(settings)
    metrics = metrics or Metrics()
    vault = load_vault(settings)
    try:
        store = store_from_url(settings.database_url)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    try:
        await store.open()
    except (StoreError, OSError) as exc:
        raise ConfigError(f"DATABASE_URL: the database cannot be opened ({exc})") from None
    threads = GoogleThreads(
        max_workers=settings.google_threads,
        timeout_seconds=settings.google_timeout_seconds,
        metrics=metrics,
    )
    google_http = GoogleHttp(
        max_connections=settings.google_connections,
        timeout_seconds=settings.google_timeout_seconds,
    )
    microsoft_http = MicrosoftHttp(
        max_connections=settings.google_connections,
        timeout_seconds=settings.google_timeout_seconds,
    )
    providers = calendar_providers(settings, metrics, threads, google_http, microsoft_http)
    notifier = ConnectionNotifier(
        settings.connection_webhook_url,
        settings.connection_webhook_secret.get_secret_value()
        if settings.connection_webhook_secret
        else None,
    )
    leases = Leases(store, ttl_seconds=settings.booking_lease_seconds, metrics=metrics)
    grants = Grants(
        store=store,
        vault=vault,
        providers=providers,
        leases=leases,
        events=notifier,
        metrics=metrics,
        refresh_margin=timedelta(seconds=settings.refresh_margin_seconds),
    )
    call_tokens = CallTokens(vault)
    links = ConnectLinks(
        vault, settings.public_url, timedelta(minutes=settings.connect_link_minutes)
    )
    pipeline = ToolPipeline(
        callers=store,
        records=store,
        calendars=ConnectedCalendars(
            grants,
            providers,
            CalendarReadability(store=store, events=notifier, metrics=metrics),
        ),
        locks=leases,
        proofs=call_tokens if settings.metadata_trust == "signed" else None,
        metrics=metrics,
        clock=clock,
        limits=Limits(
            budget_seconds=settings.tool_budget_seconds,
            calls_per_user=settings.max_concurrent_calls_per_user,
            # Over the cap a call waits up to half its budget for a place, then answers "busy".
            wait_seconds=min(5.0, settings.tool_budget_seconds / 2),
            answer_retention_seconds=settings.answer_retention_hours * 3600,
        ),
    )
    client = oauth2_client(settings)
    webhook_tokens = (
        WebhookTokens(vault, client, settings.vapi_oauth2_token_seconds) if client else None
    )
    return Services(
        settings=settings,
        metrics=metrics,
        store=store,
        vault=vault,
        threads=threads,
        google_http=google_http,
        microsoft_http=microsoft_http,
        providers=providers,
        grants=grants,
        consent=ConsentFlow(
            users=store,
            states=store,
            records=store,
            connections=store,
            links=links,
            vault=vault,
            providers=providers,
            grants=grants,
            events=notifier,
        ),
        links=links,
        notifier=notifier,
        call_tokens=call_tokens,
        pipeline=pipeline,
        webhook_auth=WebhookAuthenticator(
            bearer=bearer_plan(settings), hmac=hmac_plan(settings), tokens=webhook_tokens
        ),
        webhook_tokens=webhook_tokens,
        api_keys=ApiKeys(store),
        admin_token=admin_token(settings),
    )
