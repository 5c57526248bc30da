"""Consent for one end user: open a link, start (state + PKCE), finish (checks, then store).

What makes it safe:
- The `state` is random, bound to the user server-side, stored only as a digest (with the PKCE
  verifier encrypted), expires after 10 minutes and is consumed atomically on the callback — a
  replayed, forged or stale callback changes nothing.
- The consent is bound to the browser that pressed Connect: a random key in a cookie, stored as
  a digest with the state. A callback without that cookie changes nothing, so a consent started
  from one person's link cannot be finished in another person's browser (login CSRF).
- A connect link works until a connection completes through it, then never again (the link id
  is marked used in the store, first writer wins). A failed attempt (denied, a permission
  missing) leaves the same link usable until it expires; no page ever mints a new link.
- A user already connected to one account is not silently moved to another — another account
  of the same provider, or another provider altogether (one provider per user): that needs a
  link created with `allowAccountChange`, and the integrator is told.
- The callback must come back on the provider the consent was started with (the state records
  it), so one provider's answer can never finish another's consent.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from vapi_calendar.oauth.grants import Grants
from vapi_calendar.oauth.links import ConnectLinks, LinkClaims, LinkError
from vapi_calendar.oauth.registry import Provider, Providers
from vapi_calendar.oauth.vault import TokenVault, VaultError
from vapi_calendar.ports.events import ConnectionEvents
from vapi_calendar.ports.oauth import Consent, ExchangeFailed, Grant
from vapi_calendar.ports.stores import (
    Connection,
    ConnectionStore,
    OAuthState,
    OAuthStateStore,
    RecordStore,
    User,
    UserStore,
)
from vapi_calendar.tools.errors import ToolError
from vapi_calendar.tools.rules import TIMEZONE_SOURCE

log = logging.getLogger(__name__)

STATE_LIFETIME = timedelta(minutes=10)
# What the identity platform answers when the person may not consent themselves: the tenant's
# consent policy wants an administrator ("Need admin approval", AADSTS90094 / AADSTS65001).
ADMIN_APPROVAL_ERRORS = frozenset({"consent_required", "admin_consent_required"})


class ConsentFailure(Exception):
    """Shown to the person as a page; `retry_url` (the same link, while it works) gets them a
    "try again" button."""

    def __init__(
        self, status: int, title: str, detail: str, *, retry_url: str | None = None
    ) -> None:
        super().__init__(title)
        self.status = status
        self.title = title
        self.detail = detail
        self.retry_url = retry_url


@dataclass(frozen=True, slots=True)
class Connected:
    user: User
    email: str | None
    provider: Provider


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def pkce_pair() -> tuple[str, str]:
    """A code verifier and its S256 challenge (RFC 7636 §4.1-4.2)."""
    verifier = secrets.token_urlsafe(64)  # 86 characters of the unreserved set
    challenge = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(challenge).decode().rstrip("=")


def used_key(link_id: str) -> str:
    return f"link-used:{link_id}"


def same_account(connection: Connection, consent: Consent, provider: str) -> bool:
    """Whether a new consent is for the account already connected: the same provider, and
    the same stable account id, else the same email (connections made before ids were kept)."""
    if connection.provider != provider:
        return False
    if connection.subject and consent.subject:
        return connection.subject == consent.subject
    if connection.email and consent.email:
        return connection.email.lower() == consent.email.lower()
    return True


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
        records: RecordStore,
        connections: ConnectionStore,
        links: ConnectLinks,
        vault: TokenVault,
        providers: Providers,
        grants: Grants,
        events: ConnectionEvents,
    ) -> None:
        self._users = users
        self._states = states
        self._records = records
        self._connections = connections
        self._links = links
        self._vault = vault
        self._providers = providers
        self._grants = grants
        self._events = events

    async def open_link(self, token: str) -> tuple[LinkClaims, User]:
        """The link's claims and its user; `LinkError` if forged, expired, used or orphaned."""
        link = self._links.verify(token)
        if await self._records.get_record(used_key(link.link_id)) is not None:
            raise LinkError("used")
        user = await self._users.get_user(link.user_id)
        if user is None:
            raise LinkError("invalid")
        return link, user

    async def start(self, link: LinkClaims, browser_key: str, provider_name: str) -> str:
        """Record a pending consent bound to this link, browser and provider; the provider's
        consent URL. `UnknownProvider` for a provider this deployment does not offer.

        `browser_key` is the random value the caller puts in the browser's cookie.
        """
        provider = self._providers.get(provider_name)
        state = secrets.token_urlsafe(32)
        verifier, challenge = pkce_pair()
        state_hash = digest(state)
        await self._states.put_oauth_state(
            OAuthState(
                state_hash=state_hash,
                user_id=link.user_id,
                code_verifier=self._vault.encrypt(verifier, context=f"pkce:{state_hash}"),
                expires_at=datetime.now(UTC) + STATE_LIFETIME,
                link=self._vault.encrypt(link.token, context=f"link:{state_hash}"),
                browser=digest(browser_key),
                provider=provider.name,
            )
        )
        return provider.oauth.authorization_url(state=state, code_challenge=challenge)

    async def finish(
        self, params: dict[str, str], browser_key: str | None, provider_name: str
    ) -> Connected:
        """Finish the consent `params` (the provider's callback query) answers; the callback
        arrived at `provider_name`'s address."""
        state = params.get("state")
        if not state:
            raise ConsentFailure(
                400, "This sign-in link is not valid", "Please open the connect link again."
            )
        pending = await self._states.consume_oauth_state(digest(state), datetime.now(UTC))
        if pending is None:
            raise ConsentFailure(
                400,
                "This sign-in has expired or was already used",
                "Nothing was changed. Please open your connect link again, "
                "or ask for a new one if it has expired.",
            )
        if not browser_key or not secrets.compare_digest(digest(browser_key), pending.browser):
            # Not the browser that pressed Connect: maybe someone else's link, finished here.
            log.warning("consent finished in another browser", extra={"user_id": pending.user_id})
            raise ConsentFailure(
                400,
                "Please connect in the browser you started in",
                "This sign-in was started in a different browser, so nothing was changed. "
                "Open your connect link again in this browser.",
            )
        if pending.provider != provider_name or pending.provider not in self._providers:
            # Another provider's answer to this consent, or a provider no longer offered.
            raise ConsentFailure(
                400, "This sign-in link is not valid", "Please open the connect link again."
            )
        provider = self._providers.get(pending.provider)
        link = self._pending_link(pending)
        retry = self._links.url(link.token) if link.expires_at > datetime.now(UTC) else None
        user = await self._users.get_user(pending.user_id)
        if user is None:
            raise ConsentFailure(404, "This account no longer exists", "Nothing was changed.")
        if error := params.get("error"):
            if error == "access_denied":
                raise ConsentFailure(
                    403,
                    "Your calendar was not connected",
                    "You chose not to allow access. Nothing was changed; "
                    "you can try again whenever you like.",
                    retry_url=retry,
                )
            if error in ADMIN_APPROVAL_ERRORS:
                raise ConsentFailure(
                    403,
                    "Your organization's administrator must approve this first",
                    f"Your {provider.vendor} organization lets only an administrator allow "
                    "calendar access for new apps. Ask your IT administrator to approve it "
                    "(they can grant consent for everyone in your organization), then try "
                    "again. Nothing was changed.",
                    retry_url=retry,
                )
            raise ConsentFailure(
                502,
                f"{provider.vendor} could not complete the sign-in",
                "Please try again.",
                retry_url=retry,
            )
        code = params.get("code")
        if not code:
            raise ConsentFailure(
                400, f"{provider.vendor} sent an incomplete answer", "Please try again."
            )
        try:
            verifier = self._vault.decrypt(
                pending.code_verifier, context=f"pkce:{pending.state_hash}"
            )
        except VaultError:
            raise ConsentFailure(400, "This sign-in has expired", "Please try again.") from None

        try:
            consent = await provider.oauth.exchange_code(code, code_verifier=verifier)
        except ExchangeFailed:
            raise ConsentFailure(
                502,
                f"{provider.vendor} did not accept the sign-in",
                "Nothing was changed. Please try again.",
                retry_url=retry,
            ) from None
        previous = await self._accept(user, link, consent, retry, provider)
        user = await self._adopt_calendar_timezone(user, consent.grant, provider)
        await self._grants.store_grant(
            user.id,
            consent.grant,
            email=consent.email,
            subject=consent.subject,
            provider=provider.name,
        )
        if previous is not None and not same_account(previous, consent, provider.name):
            self._events.publish("account_changed", user.id, email=consent.email)
        self._events.publish("connected", user.id, email=consent.email)
        log.info("calendar connected", extra={"user_id": user.id, "provider": provider.name})
        return Connected(user, consent.email, provider)

    def _pending_link(self, pending: OAuthState) -> LinkClaims:
        try:
            token = self._vault.decrypt(pending.link, context=f"link:{pending.state_hash}")
            # The link was checked when Connect was pressed; it may expire during the consent.
            return self._links.verify(token, allow_expired=True)
        except (VaultError, LinkError):
            raise ConsentFailure(400, "This sign-in has expired", "Please try again.") from None

    async def _accept(
        self,
        user: User,
        link: LinkClaims,
        consent: Consent,
        retry: str | None,
        provider: Provider,
    ) -> Connection | None:
        """Every check a finished consent must pass before anything is stored (and the link is
        used up); a refused one is revoked at the provider, so no grant nobody holds is left
        behind. Returns the connection the new one replaces, if any."""
        failure: ConsentFailure | None = None
        previous = await self._connections.get_connection(user.id)
        if consent.missing:
            failure = ConsentFailure(
                403,
                "One permission is missing"
                if len(consent.missing) == 1
                else "Some permissions are missing",
                f"To book appointments for you, please allow: {'; '.join(consent.missing)}. "
                f"Allow every permission on {provider.vendor}'s consent screen.",
                retry_url=retry,
            )
        elif not consent.grant.refresh_token:
            failure = ConsentFailure(
                502,
                f"{provider.vendor} did not grant lasting access",
                "Please try again.",
                retry_url=retry,
            )
        elif (
            previous is not None
            and not same_account(previous, consent, provider.name)
            and not link.allow_account_change
        ):
            connected_with = (
                self._providers.get(previous.provider).account
                if previous.provider in self._providers
                else "calendar account"
            )
            failure = ConsentFailure(
                409,
                f"This link cannot connect a different {provider.account}"
                if previous.provider == provider.name
                else f"This link cannot switch the calendar to {provider.label}",
                f"This calendar is already connected with another {connected_with}, so "
                "nothing was changed. To switch accounts, ask for a link that allows it.",
            )
        elif not await self._records.put_record(
            used_key(link.link_id), "1", _used_lifetime(link), owner=user.id
        ):
            failure = ConsentFailure(
                410,
                "This link was already used",
                "Nothing was changed. Ask for a new link if you need to connect again.",
            )
        if failure is not None:
            await provider.oauth.revoke(consent.grant.refresh_token or consent.grant.access_token)
            raise failure
        return previous

    async def _adopt_calendar_timezone(self, user: User, grant: Grant, provider: Provider) -> User:
        """A user created without a time zone takes their calendar's."""
        if user.rules.get(TIMEZONE_SOURCE) != "default":
            return user
        calendar = provider.calendars.for_user(StoredTokenSource(grant))
        try:
            timezone = await calendar.timezone()
        except (ToolError, ExchangeFailed):
            log.warning("could not read the calendar time zone", extra={"user_id": user.id})
            return user
        rules = {**user.rules, TIMEZONE_SOURCE: "calendar"}
        return await self._users.update_user(user.id, timezone=timezone, rules=rules)


def _used_lifetime(link: LinkClaims) -> float:
    """Remember a used link at least until it would have expired anyway."""
    left = (link.expires_at - datetime.now(UTC)).total_seconds()
    return max(left, 0) + STATE_LIFETIME.total_seconds()
