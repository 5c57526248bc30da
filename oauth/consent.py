"""Consent for one end user: start (state + PKCE) and finish (exchange, checks, store).

State handling: a random `state` is bound to the user server-side, stored only as a digest
(with the PKCE verifier encrypted), expires after 10 minutes and is consumed atomically on the
callback — so a replayed, forged or stale callback changes nothing.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from vapi_calendar.oauth.grants import Grants
from vapi_calendar.oauth.vault import TokenVault, VaultError
from vapi_calendar.ports.calendar import CalendarClient
from vapi_calendar.ports.events import ConnectionEvents
from vapi_calendar.ports.oauth import ExchangeFailed, Grant, OAuthClient
from vapi_calendar.ports.stores import OAuthState, OAuthStateStore, User, UserStore
from vapi_calendar.tools.errors import ToolError
from vapi_calendar.tools.rules import TIMEZONE_SOURCE

log = logging.getLogger(__name__)

STATE_LIFETIME = timedelta(minutes=10)


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


def pkce_pair() -> tuple[str, str]:
    """A code verifier and its S256 challenge (RFC 7636 §4.1-4.2)."""
    verifier = secrets.token_urlsafe(64)  # 86 characters of the unreserved set
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).decode().rstrip("=")


class StoredTokenSource:
    """A token that is used once, right after consent (`ports.calendar.TokenSource`)."""

    def __init__(self, grant: Grant) -> None:
        self._token = grant.access_token

    async def access_token(self) -> str:
        return self._token

    async def rejected(self, token: str) -> str:
        raise ExchangeFailed()


class ConsentFlow:
    def __init__(
        self,
        *,
        users: UserStore,
        states: OAuthStateStore,
        vault: TokenVault,
        oauth: OAuthClient,
        calendars: CalendarClient,
        grants: Grants,
        events: ConnectionEvents,
    ) -> None:
        self._users = users
        self._states = states
        self._vault = vault
        self._oauth = oauth
        self._calendars = calendars
        self._grants = grants
        self._events = events

    async def start(self, user_id: str) -> str:
        """Record a pending consent for the user; return the provider's authorization URL."""
        state = secrets.token_urlsafe(32)
        verifier, challenge = pkce_pair()
        digest = state_digest(state)
        await self._states.put_oauth_state(
            OAuthState(
                state_hash=digest,
                user_id=user_id,
                code_verifier=self._vault.encrypt(verifier, context=f"pkce:{digest}"),
                expires_at=datetime.now(UTC) + STATE_LIFETIME,
            )
        )
        return self._oauth.authorization_url(state=state, code_challenge=challenge)

    async def finish(self, params: dict[str, str]) -> Connected:
        state = params.get("state")
        if not state:
            raise ConsentFailure(
                400, "This sign-in link is not valid", "Please open the connect link again."
            )
        pending = await self._states.consume_oauth_state(state_digest(state), datetime.now(UTC))
        if pending is None:
            raise ConsentFailure(
                400,
                "This sign-in has expired or was already used",
                "Nothing was changed. Please open your connect link again, "
                "or ask for a new one if it has expired.",
            )
        user = await self._users.get_user(pending.user_id)
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
            verifier = self._vault.decrypt(
                pending.code_verifier, context=f"pkce:{pending.state_hash}"
            )
        except VaultError:
            raise ConsentFailure(400, "This sign-in has expired", "Please try again.") from None

        try:
            consent = await self._oauth.exchange_code(code, code_verifier=verifier)
        except ExchangeFailed:
            raise ConsentFailure(
                502,
                "Google did not accept the sign-in",
                "Nothing was changed. Please try again.",
                retry_user=retry,
            ) from None
        if consent.missing:
            raise ConsentFailure(
                403,
                "One permission is missing"
                if len(consent.missing) == 1
                else "Some permissions are missing",
                f"To book appointments for you, please allow: {'; '.join(consent.missing)}. "
                "Tick every box on Google's consent screen.",
                retry_user=retry,
            )
        if not consent.grant.refresh_token:
            raise ConsentFailure(
                502, "Google did not grant lasting access", "Please try again.", retry_user=retry
            )

        user = await self._adopt_calendar_timezone(user, consent.grant)
        await self._grants.store_grant(
            user.id, consent.grant, email=consent.email, subject=consent.subject
        )
        self._events.publish("connected", user.id, email=consent.email)
        log.info("google calendar connected", extra={"user_id": user.id})
        return Connected(user, consent.email)

    async def _adopt_calendar_timezone(self, user: User, grant: Grant) -> User:
        """A user created without a time zone takes their calendar's."""
        if user.rules.get(TIMEZONE_SOURCE) != "default":
            return user
        calendar = self._calendars.for_user(StoredTokenSource(grant))
        try:
            timezone = await calendar.timezone()
        except (ToolError, ExchangeFailed):
            log.warning("could not read the calendar time zone", extra={"user_id": user.id})
            return user
        rules = {**user.rules, TIMEZONE_SOURCE: "calendar"}
        return await self._users.update_user(user.id, timezone=timezone, rules=rules)
