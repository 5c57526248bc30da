"""Google consent for one end user: start (state + PKCE) and finish (exchange, checks, store).

State handling: a random `state` is bound to the user server-side, stored only as a digest
(with the PKCE verifier encrypted), expires after 10 minutes and is consumed atomically on the
callback — so a replayed, forged or stale callback changes nothing. Because we consume the state
ourselves, the code is exchanged with `fetch_token(code=…)`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from google_auth_oauthlib.flow import Flow
from oauthlib.oauth2.rfc6749.errors import OAuth2Error
from requests import RequestException

from oauth.credentials import Grant
from oauth.vault import VaultError
from server.services import Services
from server.store import OAuthState, User
from tools.errors import ToolError

log = logging.getLogger(__name__)

STATE_LIFETIME = timedelta(minutes=10)
TIMEZONE_FROM_CALENDAR = "timezoneSource"  # rules key: "default" until the calendar tells us

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


def canonical_scopes(scopes: Any) -> frozenset[str]:
    if isinstance(scopes, str):
        scopes = scopes.split()
    return frozenset(SCOPE_ALIASES.get(s, s) for s in scopes or ())


def describe(scope: str) -> str:
    return PERMISSIONS.get(scope, scope)


class ConsentFailure(Exception):
    """Shown to the person as a page; `retry_user` gets them a "try again" button."""

    def __init__(
        self, status: int, title: str, detail: str, *, retry_user: str | None = None
    ) -> None:
        super().__init__(title)
        self.status = status
        self.title = title
        self.detail = detail
        self.retry_user = retry_user


@dataclass(frozen=True, slots=True)
class Connected:
    user: User
    email: str | None


def state_digest(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def redirect_uri(services: Services) -> str:
    return f"{services.settings.public_url}/oauth/google/callback"


def _flow(services: Services, *, state: str | None = None, verifier: str | None = None) -> Flow:
    settings, endpoints = services.settings, services.endpoints
    return Flow.from_client_config(
        {
            "web": {
                "client_id": settings.client_id,
                "client_secret": settings.client_secret,
                "auth_uri": endpoints.auth_uri,
                "token_uri": endpoints.token_uri,
                "redirect_uris": [redirect_uri(services)],
            }
        },
        scopes=list(settings.scopes),
        redirect_uri=redirect_uri(services),
        state=state,
        code_verifier=verifier,
        autogenerate_code_verifier=verifier is None,
    )


async def start_consent(services: Services, user_id: str) -> str:
    """Record a pending consent for the user; return Google's authorization URL."""
    state = secrets.token_urlsafe(32)
    flow = _flow(services)
    url, _ = flow.authorization_url(access_type="offline", prompt="consent", state=state)
    digest = state_digest(state)
    await services.store.put_oauth_state(
        OAuthState(
            state_hash=digest,
            user_id=user_id,
            code_verifier=services.vault.encrypt(flow.code_verifier, context=f"pkce:{digest}"),
            expires_at=datetime.now(UTC) + STATE_LIFETIME,
        )
    )
    return url


def _id_token_claims(token: dict[str, Any]) -> dict[str, Any]:
    """Claims of the id_token, which came straight from Google's token endpoint over TLS —
    the case where OpenID Connect lets TLS stand in for checking the signature."""
    raw = token.get("id_token")
    if not isinstance(raw, str) or raw.count(".") != 2:
        return {}
    payload = raw.split(".")[1]
    try:
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except ValueError:
        return {}


async def finish_consent(services: Services, params: dict[str, str]) -> Connected:
    state = params.get("state")
    if not state:
        raise ConsentFailure(
            400, "This sign-in link is not valid", "Please open the connect link again."
        )
    pending = await services.store.consume_oauth_state(state_digest(state), datetime.now(UTC))
    if pending is None:
        raise ConsentFailure(
            400,
            "This sign-in has expired or was already used",
            "Nothing was changed. Please open your connect link again, "
            "or ask for a new one if it has expired.",
        )
    user = await services.store.get_user(pending.user_id)
    if user is None:
        raise ConsentFailure(404, "This account no longer exists", "Nothing was changed.")
    retry = user.id
    if error := params.get("error"):
        if error == "access_denied":
            raise ConsentFailure(
                403,
                "Your calendar was not connected",
                "You chose not to allow access. Nothing was changed; "
                "you can try again whenever you like.",
                retry_user=retry,
            )
        raise ConsentFailure(
            502, "Google could not complete the sign-in", "Please try again.", retry_user=retry
        )
    code = params.get("code")
    if not code:
        raise ConsentFailure(400, "Google sent an incomplete answer", "Please try again.")
    try:
        verifier = services.vault.decrypt(
            pending.code_verifier, context=f"pkce:{pending.state_hash}"
        )
    except VaultError:
        raise ConsentFailure(400, "This sign-in has expired", "Please try again.") from None

    flow = _flow(services, state=state, verifier=verifier)
    try:
        token = await services.threads.run(lambda: flow.fetch_token(code=code))
    except (OAuth2Error, RequestException, ValueError, Warning) as exc:
        log.warning("authorization code exchange failed: %s", type(exc).__name__)
        raise ConsentFailure(
            502,
            "Google did not accept the sign-in",
            "Nothing was changed. Please try again.",
            retry_user=retry,
        ) from None

    granted = canonical_scopes(token.get("scope"))
    missing = sorted(canonical_scopes(services.settings.scopes) - granted)
    if missing:
        needed = "; ".join(describe(scope) for scope in missing)
        raise ConsentFailure(
            403,
            "One permission is missing" if len(missing) == 1 else "Some permissions are missing",
            f"To book appointments for you, please allow: {needed}. "
            "Tick every box on Google's consent screen.",
            retry_user=retry,
        )
    refresh_token = token.get("refresh_token")
    if not refresh_token:
        raise ConsentFailure(
            502, "Google did not grant lasting access", "Please try again.", retry_user=retry
        )

    claims = _id_token_claims(token)
    email = claims.get("email") if isinstance(claims.get("email"), str) else None
    subject = str(claims["sub"]) if claims.get("sub") else None
    grant = Grant(
        access_token=token["access_token"],
        refresh_token=refresh_token,
        expiry=datetime.now(UTC) + timedelta(seconds=int(token.get("expires_in", 3600))),
        scopes=tuple(sorted(granted)),
    )
    user = await _adopt_calendar_timezone(services, user, flow)
    await services.credentials.store_grant(user.id, grant, email=email, subject=subject)
    services.notifier.notify("connected", user.id, email=email)
    log.info("google calendar connected", extra={"user_id": user.id})
    return Connected(user, email)


async def _adopt_calendar_timezone(services: Services, user: User, flow: Flow) -> User:
    """A user created without a time zone takes their calendar's."""
    if user.rules.get(TIMEZONE_FROM_CALENDAR) != "default":
        return user
    try:
        setting = await services.gateway.execute(
            flow.credentials, lambda s: s.settings().get(setting="timezone")
        )
    except ToolError:
        log.warning("could not read the calendar time zone", extra={"user_id": user.id})
        return user
    rules = {**user.rules, TIMEZONE_FROM_CALENDAR: "calendar"}
    return await services.store.update_user(user.id, timezone=setting["value"], rules=rules)
