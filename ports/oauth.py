"""A calendar provider's OAuth endpoints, as the connection flow needs them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Grant:
    """Plaintext tokens as they come from the provider; only ever held in memory."""

    access_token: str
    refresh_token: str | None
    expiry: datetime | None  # aware UTC
    scopes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Consent:
    """What a finished consent yields: the grant, who granted it, and what they left out."""

    grant: Grant
    email: str | None
    subject: str | None  # the provider's stable account id
    # Plain-words descriptions of required permissions the person did not grant.
    missing: tuple[str, ...] = ()


class ExchangeFailed(Exception):
    """The provider did not accept the authorization code (or could not be reached)."""


class OAuthClient(Protocol):
    """Authorization-code flow with PKCE, refresh and revocation for one provider.

    `refresh` raises `tools.errors.ReconnectRequired` when the grant is dead for good,
    `tools.errors.ServiceMisconfigured` when the provider refuses this deployment's own OAuth
    client (no reconnect helps), and `tools.errors.CalendarUnavailable` when the provider cannot
    be reached.
    """

    # Where the consent page sends the browser (its origin must be allowed by the page's CSP).
    @property
    def authorization_endpoint(self) -> str: ...

    def authorization_url(self, *, state: str, code_challenge: str) -> str: ...

    async def exchange_code(self, code: str, *, code_verifier: str) -> Consent: ...

    async def refresh(self, grant: Grant) -> Grant: ...

    async def revoke(self, token: str) -> str | None:
        """None when revoked (or already invalid), else a short reason that is safe to show."""
        ...
