"""Connect links: signed, expiring, single-use URLs that let one end user connect their calendar.

The link carries the user id, a random link id, whether it may change the connected account and
its own expiry, signed with a key derived from ENCRYPTION_KEY. The expiry is the link's: the
server (or replica, or CLI) that made it decides how long it works, not the one that opens
it. Opening it is harmless (link previews do it); only the page's button starts a consent, and
the link is used up when a connection completes through it (`ConsentFlow`, which marks the
link id in the store).
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from vapi_calendar.oauth.vault import TokenVault

LinkProblem = Literal["expired", "invalid", "used"]


class LinkError(Exception):
    """The link cannot be used, and why."""

    def __init__(self, problem: LinkProblem) -> None:
        super().__init__(f"connect link {problem}")
        self.problem = problem


@dataclass(frozen=True, slots=True)
class ConnectLink:
    url: str
    token: str
    expires_at: datetime
    allow_account_change: bool


@dataclass(frozen=True, slots=True)
class LinkClaims:
    """What a genuine link says."""

    token: str
    user_id: str
    link_id: str
    allow_account_change: bool
    expires_at: datetime


class ConnectLinks:
    def __init__(self, vault: TokenVault, public_url: str, lifetime: timedelta) -> None:
        self._serializer = URLSafeTimedSerializer(
            vault.derived_keys("connect-link"), salt="vapi-calendar connect link"
        )
        self._public_url = public_url
        self.lifetime = lifetime

    def url(self, token: str) -> str:
        return f"{self._public_url}/connect/{token}"

    def create(self, user_id: str, *, allow_account_change: bool = False) -> ConnectLink:
        # Whole seconds, rounded up: a link works at least its lifetime.
        expires_at = datetime.fromtimestamp(
            math.ceil((datetime.now(UTC) + self.lifetime).timestamp()), UTC
        )
        claims: dict[str, object] = {
            "u": user_id,
            "l": secrets.token_urlsafe(16),
            "e": int(expires_at.timestamp()),
        }
        if allow_account_change:
            claims["a"] = 1
        token = self._serializer.dumps(claims)
        return ConnectLink(
            url=self.url(token),
            token=token,
            expires_at=expires_at,
            allow_account_change=allow_account_change,
        )

    def verify(self, token: str, *, allow_expired: bool = False) -> LinkClaims:
        """The link's claims; `LinkError` if forged or (unless `allow_expired`) expired."""
        try:
            data, signed_at = self._serializer.loads(token, return_timestamp=True)
        except SignatureExpired:  # pragma: no cover - no max_age is asked for
            raise LinkError("expired") from None
        except BadSignature:
            raise LinkError("invalid") from None
        if (
            not isinstance(data, dict)
            or not isinstance(data.get("u"), str)
            or not isinstance(data.get("l"), str)
        ):
            raise LinkError("invalid")
        expiry = data.get("e")
        if isinstance(expiry, int) and not isinstance(expiry, bool):
            expires_at = datetime.fromtimestamp(expiry, UTC)
        else:  # a link made before links carried their expiry: this server's lifetime
            expires_at = signed_at.astimezone(UTC) + self.lifetime
        if not allow_expired and datetime.now(UTC) >= expires_at:
            raise LinkError("expired")
        return LinkClaims(
            token=token,
            user_id=data["u"],
            link_id=data["l"],
            allow_account_change=data.get("a") == 1,
            expires_at=expires_at,
        )
