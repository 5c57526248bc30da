"""Connect links: signed, expiring URLs that let one end user connect their own calendar.

The link carries only the user id, signed with a key derived from ENCRYPTION_KEY. Opening it is
harmless (link previews do it); only the page's button starts a consent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from vapi_calendar.oauth.vault import TokenVault


class LinkError(Exception):
    """The link cannot be used; `expired` tells a stale link from a forged one."""

    def __init__(self, expired: bool) -> None:
        super().__init__("connect link expired" if expired else "connect link invalid")
        self.expired = expired


@dataclass(frozen=True, slots=True)
class ConnectLink:
    url: str
    token: str
    expires_at: datetime


class ConnectLinks:
    def __init__(self, vault: TokenVault, public_url: str, lifetime: timedelta) -> None:
        self._serializer = URLSafeTimedSerializer(
            vault.derived_keys("connect-link"), salt="vapi-calendar connect link"
        )
        self._public_url = public_url
        self.lifetime = lifetime

    def create(self, user_id: str) -> ConnectLink:
        token = self._serializer.dumps({"u": user_id})
        return ConnectLink(
            url=f"{self._public_url}/connect/{token}",
            token=token,
            expires_at=datetime.now(UTC).replace(microsecond=0) + self.lifetime,
        )

    def verify(self, token: str) -> tuple[str, datetime]:
        """The user the link is for, and when it expires."""
        try:
            data, signed_at = self._serializer.loads(
                token, max_age=int(self.lifetime.total_seconds()), return_timestamp=True
            )
        except SignatureExpired:
            raise LinkError(expired=True) from None
        except BadSignature:
            raise LinkError(expired=False) from None
        if not isinstance(data, dict) or not isinstance(data.get("u"), str):
            raise LinkError(expired=False)
        return data["u"], signed_at.astimezone(UTC) + self.lifetime
