"""Synchronous client for the Microsoft emulator's control hooks (and the shared ones)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from vapi_calendar.emulator.control import ControlClient, EmulatorControlError


class MicrosoftControlError(EmulatorControlError):
    """A control hook refused the request (the name the Microsoft tests know it by)."""


class MicrosoftControl(ControlClient):
    """The Microsoft emulator's hooks (under `/_emulator/microsoft/`); latency, faults and
    request counts are the shared hooks of `ControlClient`."""

    error = MicrosoftControlError

    # ---- app registrations and accounts ------------------------------------------------------

    def register_client(
        self, client_id: str, client_secret: str, redirect_uris: Iterable[str] = ()
    ) -> None:
        self._call(
            "POST",
            "/microsoft/clients",
            {
                "client_id": client_id,
                "client_secret": client_secret,
                "redirect_uris": list(redirect_uris),
            },
        )

    def set_client_rejected(self, client_id: str, rejected: bool = True) -> None:
        """The token endpoint refuses the client's secret (401 `invalid_client`), as after
        the secret expired or was replaced in the Entra admin center."""
        self._call(
            "POST",
            f"/microsoft/clients/{quote(client_id, safe='')}/rejected",
            {"rejected": rejected},
        )

    def create_account(
        self, email: str, timezone: str | None = None, *, mailbox: bool | None = None
    ) -> dict[str, Any]:
        """An account (work or school, or personal for outlook.com / hotmail.com / live.com
        addresses) with its mailbox; `timezone` is what mailboxSettings answers (a Windows
        name such as "Eastern Standard Time", an IANA name, "" or "Customized Time Zone")."""
        body: dict[str, Any] = {"email": email}
        if timezone is not None:
            body["timezone"] = timezone
        if mailbox is not None:
            body["mailbox"] = mailbox
        return self._call("POST", "/microsoft/accounts", body)

    def get_account(self, email: str) -> dict[str, Any]:
        return self._call("GET", f"/microsoft/accounts/{quote(email, safe='')}")

    def add_calendar(self, email: str, name: str, calendar_id: str | None = None) -> str:
        body: dict[str, Any] = {"name": name}
        if calendar_id is not None:
            body["id"] = calendar_id
        return str(
            self._call("POST", f"/microsoft/accounts/{quote(email, safe='')}/calendars", body)["id"]
        )

    # ---- grants ---------------------------------------------------------------------------

    def mint_tokens(
        self, email: str, client_id: str, scopes: Iterable[str], expires_in: int = 3600
    ) -> dict[str, Any]:
        """A grant as if `email` had consented: {access_token, refresh_token, expires_in,
        scope, tid, oid}."""
        return self._call(
            "POST",
            "/microsoft/tokens",
            {
                "email": email,
                "client_id": client_id,
                "scopes": list(scopes),
                "expires_in": expires_in,
            },
        )

    def expire_access_tokens(self, email: str) -> int:
        return int(
            self._call("POST", "/microsoft/expire-access-tokens", {"email": email})["expired"]
        )

    def revoke_grants(self, email: str) -> int:
        return int(self._call("POST", "/microsoft/revoke-grants", {"email": email})["revoked"])

    # ---- behaviour --------------------------------------------------------------------------

    def configure(self, **settings: Any) -> dict[str, Any]:
        """`page_size` (at most this many items a page), `join_url_pending_reads` (a Teams
        join URL appears on that many-th read after the create), `mailbox_concurrency`
        (requests in flight per mailbox before 429; None = no limit),
        `retire_used_refresh_tokens`, `admin_consent_tenants` (tenant ids, or "*", whose users
        cannot consent themselves)."""
        return dict(self._call("POST", "/microsoft/settings", settings))

    # ---- calendar data ----------------------------------------------------------------------

    def seed_event(
        self, email: str, event: dict[str, Any], *, calendar_id: str | None = None
    ) -> dict[str, Any]:
        """An event as if the owner made it in Outlook (no auth, no counters)."""
        body = {**event, **({"calendarId": calendar_id} if calendar_id else {})}
        return self._call("POST", f"/microsoft/accounts/{quote(email, safe='')}/events", body)

    def events(self, email: str) -> list[dict[str, Any]]:
        """Every stored event with its `folder` (a calendar id, "deleteditems" or "gone")."""
        return list(self._call("GET", f"/microsoft/accounts/{quote(email, safe='')}/events"))

    # ---- the shared hooks -----------------------------------------------------------------------

    def add_fault(
        self,
        kind: str,
        status: int | None = None,
        error: str | None = None,
        *,
        times: int = 1,
        latency_ms: int | None = None,
        headers: dict[str, str] | None = None,
        body: Any = None,
    ) -> None:
        """Fail the next `times` requests of `kind` (e.g. "graph.events.create"): `error` is
        Graph's code or the token endpoint's OAuth error."""
        payload: dict[str, Any] = {"kind": kind, "status": status, "times": times}
        for key, value in (
            ("error", error),
            ("latency_ms", latency_ms),
            ("headers", headers),
            ("body", body),
        ):
            if value is not None:
                payload[key] = value
        self._call("POST", "/faults", payload)
