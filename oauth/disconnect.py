"""Disconnect: revoke the grant at the provider (best effort), then forget it."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from vapi_calendar.oauth.registry import Providers
from vapi_calendar.oauth.vault import TokenVault, VaultError
from vapi_calendar.ports.events import ConnectionEvents
from vapi_calendar.ports.stores import ConnectionStore

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Disconnected:
    revoked: bool
    revoke_error: str | None  # safe to show: never contains the token


async def disconnect(
    user_id: str,
    *,
    store: ConnectionStore,
    vault: TokenVault,
    providers: Providers,
    events: ConnectionEvents,
) -> Disconnected | None:
    """None when the user had no connection."""
    connection = await store.get_connection(user_id)
    if connection is None:
        return None
    error: str | None
    try:
        if connection.refresh_token:
            # Revoking the refresh token revokes the access tokens issued from it.
            token = vault.decrypt(connection.refresh_token, context=f"refresh:{user_id}")
        else:
            token = vault.decrypt(connection.access_token, context=f"access:{user_id}")
    except VaultError:
        error = "stored tokens could not be decrypted, so nothing was revoked at the provider"
    else:
        if connection.provider in providers:
            error = await providers.get(connection.provider).oauth.revoke(token)
        else:
            error = f"the {connection.provider} provider is not configured, so nothing was revoked"
    await store.delete_connection(user_id)
    events.publish("disconnected", user_id, email=connection.email)
    if error:
        log.warning(
            "revocation at the provider failed: %s",
            error,
            extra={"user_id": user_id, "provider": connection.provider},
        )
    return Disconnected(revoked=error is None, revoke_error=error)
