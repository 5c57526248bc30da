"""Google's OAuth 2.0 endpoints: consent URL, code exchange (PKCE), refresh, revocation.

Refresh goes through google-auth's own `Credentials.refresh`. The authorization URL and the code
exchange are the two documented requests of the authorization-code flow with PKCE (RFC 6749
§4.1, RFC 7636), made here directly: google-auth-oauthlib's `Flow` runs them through oauthlib,
which is configured only by process-wide environment variables (`OAUTHLIB_INSECURE_TRANSPORT`
for an emulator on plain http, `OAUTHLIB_RELAX_TOKEN_SCOPE` so that a person who unticks a box
gets a page naming the permission rather than an exception) — and a library must not rewrite
its host's environment. The emulator's side of the same flow is checked against google-auth-
oauthlib itself in the test suite.
"""

from __future__ import annotations

import base64
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import google_auth_httplib2
from google.oauth2.credentials import Credentials

from vapi_calendar.ports.oauth import Consent, ExchangeFailed, Grant
from vapi_calendar.providers.google.endpoints import GoogleEndpoints
from vapi_calendar.providers.google.errors import TRANSPORT_ERRORS, refresh_error
from vapi_calendar.providers.google.threads import GoogleThreads

log = logging.getLogger(__name__)

# Google reports granted identity scopes in their canonical form.
SCOPE_ALIASES = {
    "email": "https://www.googleapis.com/auth/userinfo.email",
    "profile": "https://www.googleapis.com/auth/userinfo.profile",
}
PERMISSIONS = {
    "https://www.googleapis.com/auth/calendar.freebusy": "see when you are free or busy",
    "https://www.googleapis.com/auth/calendar.events.owned": (
        "create and change events on calendars you own"
    ),
    "https://www.googleapis.com/auth/calendar.settings.readonly": (
        "see your calendar settings (your time zone)"
    ),
    "https://www.googleapis.com/auth/calendar.events": "view and edit events on your calendars",
    "https://www.googleapis.com/auth/calendar.readonly": "see your calendars",
    "https://www.googleapis.com/auth/calendar": "see and edit your calendars",
    "https://www.googleapis.com/auth/userinfo.email": "see your email address",
    "openid": "confirm who you are on Google",
}
_FORM = {"content-type": "application/x-www-form-urlencoded"}


def canonical_scopes(scopes: Any) -> frozenset[str]:
    if isinstance(scopes, str):
        scopes = scopes.split()
    return frozenset(SCOPE_ALIASES.get(s, s) for s in scopes or ())


def describe(scope: str) -> str:
    return PERMISSIONS.get(scope, scope)


def _id_token_claims(token: dict[str, Any]) -> dict[str, Any]:
    """Claims of the id_token, which came straight from Google's token endpoint over TLS —
    the case where OpenID Connect lets TLS stand in for checking the signature."""
    raw = token.get("id_token")
    if not isinstance(raw, str) or raw.count(".") != 2:
        return {}
    payload = raw.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except ValueError:
        return {}
    return claims if isinstance(claims, dict) else {}


class GoogleOAuth:
    """Implements `ports.oauth.OAuthClient` for one OAuth client ("Web application")."""

    def __init__(
        self,
        *,
        endpoints: GoogleEndpoints,
        client_id: str,
        client_secret: str,
        scopes: tuple[str, ...],
        redirect_uri: str,
        threads: GoogleThreads,
    ) -> None:
        self._endpoints = endpoints
        self._client_id = client_id
        self._client_secret = client_secret
        self._scopes = scopes
        self._redirect_uri = redirect_uri
        self._threads = threads

    @property
    def authorization_endpoint(self) -> str:
        return self._endpoints.auth_uri

    def authorization_url(self, *, state: str, code_challenge: str) -> str:
        params = {
            "response_type": "code",
            "client_id": self._client_id,
            "redirect_uri": self._redirect_uri,
            "scope": " ".join(self._scopes),
            "state": state,
            "code_challenge": code_challenge,
            "code_challenge_method": "S256",
            # A refresh token every time, not only on the first consent.
            "access_type": "offline",
            "prompt": "consent",
        }
        return f"{self._endpoints.auth_uri}?{urlencode(params)}"

    async def exchange_code(self, code: str, *, code_verifier: str) -> Consent:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": code_verifier,
            "redirect_uri": self._redirect_uri,
            "client_id": self._client_id,
            "client_secret": self._client_secret,
        }
        try:
            status, token = await self._threads.run(
                lambda: self._post(self._endpoints.token_uri, form)
            )
        except TRANSPORT_ERRORS as exc:
            log.warning("authorization code exchange failed: %s", type(exc).__name__)
            raise ExchangeFailed() from None
        if status != 200 or not isinstance(token.get("access_token"), str):
            error = token.get("error") if isinstance(token.get("error"), str) else status
            log.warning("authorization code exchange failed: %s", error)
            raise ExchangeFailed()
        granted = canonical_scopes(token.get("scope"))
        missing = sorted(canonical_scopes(self._scopes) - granted)
        refresh = token.get("refresh_token")
        claims = _id_token_claims(token)
        email = claims.get("email")
        return Consent(
            grant=Grant(
                access_token=token["access_token"],
                refresh_token=refresh if isinstance(refresh, str) and refresh else None,
                expiry=datetime.now(UTC) + timedelta(seconds=int(token.get("expires_in", 3600))),
                scopes=tuple(sorted(granted)),
            ),
            email=email if isinstance(email, str) else None,
            subject=str(claims["sub"]) if claims.get("sub") else None,
            missing=tuple(describe(scope) for scope in missing),
        )

    def _post(self, url: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """One form POST on this worker's connection; the status and the JSON body ({} if none)."""
        request = google_auth_httplib2.Request(self._threads.http())
        response = request(url, method="POST", body=urlencode(form).encode(), headers=_FORM)
        try:
            body = json.loads(response.data or b"{}")
        except ValueError:
            body = {}
        return response.status, body if isinstance(body, dict) else {}

    async def refresh(self, grant: Grant) -> Grant:
        creds = Credentials(
            grant.access_token,
            refresh_token=grant.refresh_token,
            token_uri=self._endpoints.token_uri,
            client_id=self._client_id,
            client_secret=self._client_secret,
            scopes=list(grant.scopes),
            # google-auth compares expiry with a naive UTC "now".
            expiry=grant.expiry.astimezone(UTC).replace(tzinfo=None) if grant.expiry else None,
        )

        def refresh() -> None:
            creds.refresh(google_auth_httplib2.Request(self._threads.http()))

        try:
            await self._threads.run(refresh)
        except Exception as exc:
            translated = refresh_error(exc)
            raise translated from None
        if not creds.token:
            raise refresh_error(TypeError("the token endpoint sent no access token"))
        return Grant(
            access_token=creds.token,
            # google-auth keeps the old refresh token unless Google sent a new one (rotation).
            refresh_token=creds.refresh_token,
            expiry=creds.expiry.replace(tzinfo=UTC) if creds.expiry else None,
            scopes=tuple(creds.granted_scopes or grant.scopes),
        )

    async def revoke(self, token: str) -> str | None:
        try:
            status, _ = await self._threads.run(
                lambda: self._post(self._endpoints.revoke_uri, {"token": token})
            )
        except TRANSPORT_ERRORS:
            return "Google's revocation endpoint could not be reached"
        # 400 invalid_token: already revoked or expired at Google, which is what we wanted.
        if status in (200, 400):
            return None
        return f"Google answered {status} to the revocation"
