"""Connect links: signed, expiring, single-use URLs that let one end user connect their calendar.

The link carries the user id, a random link id and whether it may change the connected account,
signed with a key derived from ENCRYPTION_KEY. Opening it is harmless (link previews do it); only
the page's button starts a consent, and the link is used up when a connection completes through
it (`ConsentFlow`, which marks the link id in the store).
"""

from __future__ import annotations

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
        claims: dict[str, object] = {"u": user_id, "l": secrets.token_urlsafe(16)}
        if allow_account_change:
            claims["a"] = 1
        token = self._serializer.dumps(claims)
        signed_at = datetime.now(UTC).replace(microsecond=0)
        return ConnectLink(
            url=self.url(token),
            token=token,
            expires_at=signed_at + self.lifetime,
            allow_account_change=allow_account_change,
        )

    def verify(self, token: str, *, allow_expired: bool = False) -> LinkClaims:
        """The link's claims; `LinkError` if forged or (unless `allow_expired`) expired."""
        max_age = None if allow_expired else int(self.lifetime.total_seconds())
        try:
            data, signed_at = self._serializer.loads(token, max_age=max_age, return_timestamp=True)
        except SignatureExpired:
            raise LinkError("expired") from None
        except BadSignature:
            raise LinkError("invalid") from None
        if (
            not isinstance(data, dict)
            or not isinstance(data.get("u"), str)
            or not isinstance(data.get("l"), str)
        ):
            raise LinkError("invalid")
        return LinkClaims(
            token=token,
            user_id=data["u"],
            link_id=data["l"],
            allow_account_change=data.get("a") == 1,
            expires_at=signed_at.astimezone(UTC) + self.lifetime,
        )
