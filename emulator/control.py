"""Synchronous client for the emulator's `/_emulator/*` control hooks."""

from __future__ import annotations

from collections.abc import Iterable
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import httpx


class EmulatorControlError(RuntimeError):
    """A control hook refused the request (bad input, unknown account, ...)."""


class ControlClient:
    """A synchronous client of the `/_emulator/*` hooks; each provider's emulator adds its own.

    `base_url` is the emulator root, including any mount prefix (e.g. `.../emulator`).
    """

    error: type[EmulatorControlError] = EmulatorControlError  # what a refused hook raises

    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url + "/_emulator", timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self._http.request(method, path, json=body)
        if response.is_error:
            raise self.error(f"{method} {path} -> {response.status_code}: {response.text}")
        return response.json()

    # ---- hooks every emulator shares --------------------------------------------------------

    def set_latency(self, ms: int, kind: str | None = None, *, jitter_ms: int = 0) -> None:
        """Delay each request (of `kind`, or of every kind) by `ms` ± up to `jitter_ms`."""
        self._call("POST", "/latency", {"ms": ms, "kind": kind, "jitter_ms": jitter_ms})

    def clear_faults(self) -> None:
        """Remove every fault and all added latency."""
        self._call("DELETE", "/faults")

    def requests(self) -> dict[str, int]:
        return dict(self._call("GET", "/requests"))

    def reset_requests(self) -> None:
        self._call("POST", "/reset-requests")


class EmulatorControl(ControlClient):
    """The Google emulator's hooks, and the ones every emulator shares (latency, …)."""

    # ---- setup ----------------------------------------------------------------------------

    def register_client(
        self, client_id: str, client_secret: str, redirect_uris: Iterable[str] = ()
    ) -> None:
        self._call(
            "POST",
            "/clients",
            {
                "client_id": client_id,
                "client_secret": client_secret,
                "redirect_uris": list(redirect_uris),
            },
        )

    def create_account(
        self, email: str, timezone: str = "UTC", sub: str | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"email": email, "timezone": timezone}
        if sub is not None:
            body["sub"] = sub
        return self._call("POST", "/accounts", body)

    def get_account(self, email: str) -> dict[str, Any]:
        return self._call("GET", f"/accounts/{quote(email, safe='')}")

    def add_calendar(
        self,
        email: str,
        calendar_id: str,
        summary: str | None = None,
        timezone: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"id": calendar_id}
        if summary is not None:
            body["summary"] = summary
        if timezone is not None:
            body["timeZone"] = timezone
        return self._call("POST", f"/accounts/{quote(email, safe='')}/calendars", body)

    # ---- grants ---------------------------------------------------------------------------

    def mint_tokens(
        self, email: str, client_id: str, scopes: Iterable[str], expires_in: int = 3600
    ) -> dict[str, Any]:
        """A grant as if `email` had consented: {access_token, refresh_token, expires_in, scope}."""
        return self._call(
            "POST",
            "/tokens",
            {
                "email": email,
                "client_id": client_id,
                "scopes": list(scopes),
                "expires_in": expires_in,
            },
        )

    def expire_access_tokens(self, email: str) -> int:
        return int(self._call("POST", "/expire-access-tokens", {"email": email})["expired"])

    def revoke_grants(self, email: str) -> int:
        return int(self._call("POST", "/revoke-grants", {"email": email})["revoked"])

    def set_rotate_refresh_tokens(self, rotate: bool) -> None:
        self._call("POST", "/settings", {"rotate_refresh_tokens": rotate})

    def set_client_rejected(self, client_id: str, rejected: bool = True) -> None:
        """The token endpoint refuses the client's secret (401 `invalid_client`), as after the
        secret was rotated or the client deleted in Google Cloud Console."""
        self._call("POST", f"/clients/{quote(client_id, safe='')}/rejected", {"rejected": rejected})

    # ---- Calendar behaviour -------------------------------------------------------------------

    def set_list_paging(self, page_size: int | None, *, empty_pages: bool = False) -> None:
        """events.list pages hold at most `page_size` items (None: what maxResults asks), and
        with `empty_pages` every page of items is preceded by an empty one with nextPageToken."""
        self._call(
            "POST", "/settings", {"list_page_size": page_size, "list_empty_pages": empty_pages}
        )

    def set_freebusy_error(self, calendar_id: str, reason: str | None) -> None:
        """freeBusy answers `calendar_id` with a per-calendar error (e.g. "notFound",
        "internalError") instead of its busy time; None reads it normally again."""
        self._call("POST", "/freebusy-errors", {"calendar_id": calendar_id, "reason": reason})

    def set_meet_pending(self, reads: int) -> None:
        """Meet links are created asynchronously: a write answers `pending`, and the link
        appears on the `reads`-th events.get afterwards (0: at once, as before)."""
        self._call("POST", "/settings", {"meet_pending_reads": reads})

    # ---- calendar data ----------------------------------------------------------------------

    def seed_event(self, calendar_id: str, event: dict[str, Any]) -> dict[str, Any]:
        """Create an event as if the user made it in Google Calendar (no auth, no counters)."""
        return self._call("POST", f"/calendars/{quote(calendar_id, safe='')}/events", event)

    def events(self, calendar_id: str) -> list[dict[str, Any]]:
        """Every stored event, cancelled ones included."""
        return self._call("GET", f"/calendars/{quote(calendar_id, safe='')}/events")

    # ---- faults ---------------------------------------------------------------------------

    def add_fault(
        self,
        kind: str,
        status: int | None = None,
        error: str | None = None,
        *,
        times: int = 1,
        probability: float | None = None,
        latency_ms: int | None = None,
        error_description: str | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Fail the next `times` requests of `kind` (or each with `probability`, until cleared).

        `status=None` with `latency_ms` only slows the request down; `headers` are added to the
        failure (e.g. Retry-After on a Microsoft Graph 429).
        """
        payload: dict[str, Any] = {"kind": kind, "status": status, "times": times}
        for key, value in (
            ("error", error),
            ("probability", probability),
            ("latency_ms", latency_ms),
            ("error_description", error_description),
            ("body", body),
            ("headers", headers),
        ):
            if value is not None:
                payload[key] = value
        self._call("POST", "/faults", payload)

    def reset(self) -> None:
        """Forget accounts, calendars, tokens, faults and counters; keep registered clients."""
        self._call("POST", "/reset")
