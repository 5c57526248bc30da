"""Disconnect: revoke the grant at Google (best effort), then forget it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import urlencode

import google_auth_httplib2
from google.auth.exceptions import TransportError

from oauth.vault import VaultError
from server.services import Services

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Disconnected:
    revoked: bool
    revoke_error: str | None  # safe to show: never contains the token


async def revoke_at_google(services: Services, token: str) -> str | None:
    """Revoke a token; None on success, else a short reason."""

    def revoke() -> int:
        request = google_auth_httplib2.Request(services.threads.http())
        response = request(
            services.endpoints.revoke_uri,
            method="POST",
            body=urlencode({"token": token}).encode(),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        return response.status

    try:
        status = await services.threads.run(revoke)
    except (TransportError, OSError):
        return "Google's revocation endpoint could not be reached"
    # 400 invalid_token: already revoked or expired at Google, which is what we wanted.
    if status == 200 or status == 400:
        return None
    return f"Google answered {status} to the revocation"


async def disconnect(services: Services, user_id: str) -> Disconnected | None:
    """None when the user had no connection."""
    connection = await services.store.get_connection(user_id)
    if connection is None:
        return None
    error: str | None
    try:
        if connection.refresh_token:
            # Revoking the refresh token revokes the access tokens issued from it.
            token = services.vault.decrypt(connection.refresh_token, context=f"refresh:{user_id}")
        else:
            token = services.vault.decrypt(connection.access_token, context=f"access:{user_id}")
    except VaultError:
        error = "stored tokens could not be decrypted, so nothing was revoked at Google"
    else:
        error = await revoke_at_google(services, token)
    await services.store.delete_connection(user_id)
    services.notifier.notify("disconnected", user_id, email=connection.email)
    if error:
        log.warning("revocation at google failed: %s", error, extra={"user_id": user_id})
    return Disconnected(revoked=error is None, revoke_error=error)
