"""Where Google lives: the real endpoints, or an emulator serving Google's own paths."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class GoogleEndpoints:
    auth_uri: str
    token_uri: str
    revoke_uri: str
    calendar_api: str  # rootUrl + servicePath, ending in "/calendar/v3/"

    @classmethod
    def google(cls) -> GoogleEndpoints:
        return cls(
            auth_uri="https://accounts.google.com/o/oauth2/v2/auth",
            token_uri="https://oauth2.googleapis.com/token",  # noqa: S106 - a URL
            revoke_uri="https://oauth2.googleapis.com/revoke",
            calendar_api="https://www.googleapis.com/calendar/v3/",
        )

    @classmethod
    def emulator(cls, base: str) -> GoogleEndpoints:
        base = base.rstrip("/")
        return cls(
            auth_uri=f"{base}/o/oauth2/v2/auth",
            token_uri=f"{base}/token",
            revoke_uri=f"{base}/revoke",
            calendar_api=f"{base}/calendar/v3/",
        )

    @classmethod
    def for_base(cls, base: str | None) -> GoogleEndpoints:
        return cls.emulator(base) if base else cls.google()
