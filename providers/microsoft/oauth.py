"""The Microsoft identity platform (v2.0 endpoints): consent URL, code exchange, refresh.

Why not msal, Microsoft's library: the authorization-code flow with PKCE and refresh is three
documented requests (v2-oauth2-auth-code-flow), and msal fits this server badly — its PKCE
exists only inside `initiate_auth_code_flow`, which makes the verifier, the state and a nonce
itself and must be handed its own `flow` dict back, whereas the connection flow makes, binds
and stores its own state and verifier (`oauth/consent.py`); it accepts only https authorities
(`canonicalize()` refuses anything else), so the http emulator that demo mode and the tests run
could not stand in for Microsoft; it makes a blocking discovery request when it is built and
runs on `requests` (a thread per call); and it keeps every user's tokens in a per-process cache
while ours are sealed in the store. So the requests are made here directly with the server's
aiohttp pool, exactly as `providers/google/oauth.py` does for Google — and the emulator's side
of them follows the same reference.

The id_token is read without checking its signature: it came straight from the token endpoint
over TLS, the case where OpenID Connect lets TLS stand in for the signature (msal does not
check it either). Its `tid` + `oid` name the account (stable across apps; `email` and
`preferred_username` are for display only).
"""

from __future__ import annotations

import base64
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from vapi_calendar.ports.oauth import Consent, ExchangeFailed, Grant
from vapi_calendar.providers.microsoft.endpoints import MicrosoftEndpoints
from vapi_calendar.providers.microsoft.errors import (
    TRANSPORT_ERRORS,
    token_error,
    token_unreachable,
)
from vapi_calendar.providers.microsoft.http import MicrosoftHttp, Reply

log = logging.getLogger(__name__)

# `offline_access` for a refresh token, `openid email` for who signed in; Graph's delegated
# permissions for calendars (calendarView, create, change, cancel) and the mailbox time zone.
SCOPES = ("offline_access", "openid", "email", "Calendars.ReadWrite", "MailboxSettings.Read")
GRAPH_RESOURCE = "https://graph.microsoft.com/"
# Graph permissions a connection cannot work without, and how the connect page names them.
REQUIRED = {
    "calendars.readwrite": "see, create, change and cancel events in your calendars",
    "mailboxsettings.read": "read your mailbox settings (your time zone)",
}
REVOKE_REASON = (
    "Microsoft offers no endpoint to revoke one app's access, so the stored tokens were only "
    "deleted here; the account owner can remove the app at https://myapps.microsoft.com "
    "(work or school) or https://account.live.com/consent/Manage (personal)"
)


def granted_scopes(value: Any) -> tuple[str, ...]:
    """Graph scopes as granted: short names, lower case (the endpoint may answer either
    `Calendars.ReadWrite` or `https://graph.microsoft.com/calendars.readwrite`)."""
    names = value.split() if isinstance(value, str) else []
    return tuple(sorted({name.lower().removeprefix(GRAPH_RESOURCE) for name in names}))


def id_token_claims(token: dict[str, Any]) -> dict[str, Any]:
    raw = token.get("id_token")
    if not isinstance(raw, str) or raw.count(".") != 2:
        return {}
    payload = raw.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except ValueError:
        return {}
    return claims if isinstance(claims, dict) else {}


def account_id(claims: dict[str, Any]) -> str | None:
    """The account's stable id: tenant and object id, else the (per-app) subject."""
    tid, oid = claims.get("tid"), claims.get("oid")
    if isinstance(tid, str) and isinstance(oid, str) and tid and oid:
        return f"{tid}/{oid}"
    sub = claims.get("sub")
    return str(sub) if sub else None


def account_email(claims: dict[str, Any]) -> str | None:
    for key in ("email", "preferred_username"):
        value = claims.get(key)
        if isinstance(value, str) and "@" in value:
            return value
    return None


class MicrosoftOAuth:
    """Implements `ports.oauth.OAuthClient` for one app registration (a confidential web app)."""

    def __init__(
        self,
        *,
        endpoints: MicrosoftEndpoints,
        client_id: str,
        client_secret: str,
        redirect_uri: str,
        http: MicrosoftHttp,
        scopes: tuple[str, ...] = SCOPES,
    ) -> None:
        self._endpoints = endpoints
        self._client_id = client_id
        self._client_secret = client_secret
        self._redirect_uri = redirect_uri
        self._http = http
        self._scopes = scopes

    @property
    def authorization_endpoint(self) -> str:
        return self._endpoints.authorize_uri

    def authorization_url(self, *, state: str, code_challenge: str) -> str:
        params = {
            "client_id": self._client_id,
            "response_type": "code",
            "redirect_uri": self._redirect_uri,
            # The code comes back in the query of a top-level GET, where the SameSite=Lax
            # consent cookie rides along (form_post would be a cross-site POST without it).
            "response_mode": "query",
            "scope": " ".join(self._scopes),
            "state": state,
            "code_challenge": code_challenge,
            "code_challenge_method": "S256",
            # Let the person pick the account to connect, not whichever is signed in.
            "prompt": "select_account",
        }
        return f"{self._endpoints.authorize_uri}?{urlencode(params)}"

    async def _token(self, form: dict[str, str]) -> Reply:
        # The client secret goes in the form body (client_secret_post), as Entra expects.
        return await self._http.send(
            "POST",
            self._endpoints.token_uri,
            form={**form, "client_id": self._client_id, "client_secret": self._client_secret},
        )

    async def exchange_code(self, code: str, *, code_verifier: str) -> Consent:
        try:
            reply = await self._token(
                {
                    "grant_type": "authorization_code",
                    "code": code,
                    "code_verifier": code_verifier,
                    "redirect_uri": self._redirect_uri,
                    "scope": " ".join(self._scopes),
                }
            )
        except TRANSPORT_ERRORS as exc:
            log.warning("microsoft code exchange failed: %s", type(exc).__name__)
            raise ExchangeFailed() from None
        token = reply.body
        if reply.status != 200 or not isinstance(token.get("access_token"), str):
            error = token.get("error") if isinstance(token.get("error"), str) else reply.status
            log.warning("microsoft code exchange failed: %s", error)
            raise ExchangeFailed()
        grant = self._grant(token, previous=None)
        missing = sorted(set(REQUIRED) - set(grant.scopes))
        claims = id_token_claims(token)
        return Consent(
            grant=grant,
            email=account_email(claims),
            subject=account_id(claims),
            missing=tuple(REQUIRED[scope] for scope in missing),
        )

    def _grant(self, token: dict[str, Any], previous: Grant | None) -> Grant:
        refresh = token.get("refresh_token")
        scopes = granted_scopes(token.get("scope"))
        try:
            lifetime = int(token.get("expires_in", 3600))
        except (TypeError, ValueError):
            lifetime = 3600
        return Grant(
            access_token=str(token["access_token"]),
            # Refresh tokens rotate: every refresh answers a new one, which replaces the old.
            refresh_token=(
                refresh
                if isinstance(refresh, str) and refresh
                else (previous.refresh_token if previous else None)
            ),
            expiry=datetime.now(UTC) + timedelta(seconds=lifetime),
            scopes=scopes or (previous.scopes if previous else ()),
        )

    async def refresh(self, grant: Grant) -> Grant:
        if not grant.refresh_token:
            raise token_error(400, {"error": "invalid_grant"})
        try:
            reply = await self._token(
                {
                    "grant_type": "refresh_token",
                    "refresh_token": grant.refresh_token,
                    "scope": " ".join(self._scopes),
                }
            )
        except TRANSPORT_ERRORS:
            raise token_unreachable() from None
        if reply.status != 200 or not isinstance(reply.body.get("access_token"), str):
            raise token_error(reply.status, reply.body)
        return self._grant(reply.body, previous=grant)

    async def revoke(self, token: str) -> str | None:
        # The identity platform has no revocation endpoint (its discovery document names
        # none); Graph's revokeSignInSessions would sign the user out of every app.
        return REVOKE_REASON
