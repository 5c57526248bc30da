"""Everything a request needs, built once per process in the app's lifespan."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from oauth.credentials import CredentialsProvider
from oauth.endpoints import GoogleEndpoints
from oauth.links import ConnectLinks
from oauth.notify import ConnectionNotifier
from oauth.transport import GoogleThreads
from oauth.vault import TokenVault, load_or_create_key_file
from server.config import Settings
from server.limits import UserLimiter
from server.store import Store, store_from_url
from server.webhook_auth import WebhookAuthenticator
from tools.google_calendar import CalendarGateway

log = logging.getLogger(__name__)


class ConfigError(Exception):
    """The configuration cannot work; the message says what to set."""


@dataclass(slots=True)
class Services:
    settings: Settings
    store: Store
    vault: TokenVault
    threads: GoogleThreads
    endpoints: GoogleEndpoints
    credentials: CredentialsProvider
    gateway: CalendarGateway
    webhook_auth: WebhookAuthenticator
    links: ConnectLinks
    notifier: ConnectionNotifier
    user_limiter: UserLimiter

    async def close(self) -> None:
        await self.notifier.aclose()
        self.threads.shutdown()
        await self.store.close()


def embedded_data_dir(settings: Settings) -> Path | None:
    """The directory of the SQLite file, where the embedded default keeps its key."""
    if settings.database_url.startswith("sqlite:///"):
        return Path(settings.database_url.removeprefix("sqlite:///")).parent
    return None


def load_vault(settings: Settings) -> TokenVault:
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


def check_settings(settings: Settings) -> None:
    if not settings.demo_mode and settings.google_client_secret is None:
        raise ConfigError("GOOGLE_CLIENT_SECRET is required when GOOGLE_CLIENT_ID is set")
    if settings.connection_webhook_url and settings.connection_webhook_secret is None:
        raise ConfigError("CONNECTION_WEBHOOK_SECRET is required with CONNECTION_WEBHOOK_URL")


def configure_oauthlib(endpoints: GoogleEndpoints) -> None:
    """oauthlib's process-wide switches, set on purpose.

    Granted scopes are checked by the callback itself (with a message naming what is missing),
    so oauthlib must not raise on a changed scope set. Plain-http token endpoints are allowed
    only when Google is an emulator.
    """
    os.environ["OAUTHLIB_RELAX_TOKEN_SCOPE"] = "1"  # noqa: S105 - a flag, not a secret
    if endpoints.is_plain_http:
        os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"


async def open_services(settings: Settings) -> Services:
    check_settings(settings)
    vault = load_vault(settings)
    try:
        store = store_from_url(settings.database_url)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    await store.open()
    threads = GoogleThreads(
        max_workers=settings.google_threads, timeout_seconds=settings.google_timeout_seconds
    )
    endpoints = GoogleEndpoints.for_base(settings.google_base_url)
    configure_oauthlib(endpoints)
    notifier = ConnectionNotifier(
        settings.connection_webhook_url,
        settings.connection_webhook_secret.get_secret_value()
        if settings.connection_webhook_secret
        else None,
    )
    credentials = CredentialsProvider(
        store=store,
        vault=vault,
        threads=threads,
        endpoints=endpoints,
        client_id=settings.client_id,
        client_secret=settings.client_secret,
        refresh_margin=timedelta(seconds=settings.refresh_margin_seconds),
        notifier=notifier,
    )
    return Services(
        settings=settings,
        store=store,
        vault=vault,
        threads=threads,
        endpoints=endpoints,
        credentials=credentials,
        gateway=CalendarGateway(threads, endpoints.calendar_api),
        webhook_auth=WebhookAuthenticator(
            secret=settings.vapi_secret.get_secret_value() if settings.vapi_secret else None,
            hmac_secret=settings.vapi_hmac_secret.get_secret_value()
            if settings.vapi_hmac_secret
            else None,
        ),
        links=ConnectLinks(
            vault, settings.public_url, timedelta(minutes=settings.connect_link_minutes)
        ),
        notifier=notifier,
        user_limiter=UserLimiter(
            settings.max_concurrent_calls_per_user,
            # Over the cap a call waits up to half its budget for a slot, then answers "busy".
            wait_seconds=min(5.0, settings.tool_budget_seconds / 2),
        ),
    )
