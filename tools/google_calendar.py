"""The Calendar v3 boundary: real google-api-python-client calls, off the event loop.

Every transport or API failure is translated here, once, into the small domain hierarchy of
`tools.errors` (plus `DuplicateEvent`, which booking uses for idempotency). Tool code above this
module never sees `HttpError`, `RefreshError` or socket errors.
"""

from __future__ import annotations

import http.client
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import google_auth_httplib2
import httplib2
from google.auth.exceptions import RefreshError, TransportError
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import Resource, build
from googleapiclient.errors import HttpError

from oauth.credentials import CredentialsProvider, is_invalid_grant
from oauth.transport import GoogleThreads
from server import metrics
from tools.errors import CalendarRejected, CalendarUnavailable, ReconnectRequired, ToolError
from tools.retry import http_reason, request_is_retry_safe, with_retries
from tools.slots import Interval

log = logging.getLogger(__name__)


class DuplicateEvent(Exception):
    """events.insert with an id that already exists (409 `duplicate`)."""


class EventNotFound(CalendarRejected):
    default_message = "I could not find that appointment."


class EventGone(ToolError):
    default_message = "That appointment no longer exists."


def parse_rfc3339(value: str) -> datetime:
    """A Google timestamp (`…Z` or with an offset) as an aware UTC datetime."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


class CalendarGateway:
    """Calendar API calls for any user; one built service per worker thread."""

    def __init__(self, threads: GoogleThreads, api_endpoint: str) -> None:
        self._threads = threads
        self._api_endpoint = api_endpoint

    def _service(self) -> Resource:
        # build() parses the discovery document (several ms): once per worker thread, never per
        # call. The service is bound to this thread's Http; each call passes an AuthorizedHttp
        # wrapping the same connection with the caller's credentials.
        return self._threads.thread_local(
            "calendar_service",
            lambda: build(
                "calendar",
                "v3",
                http=self._threads.http(),
                cache_discovery=False,
                static_discovery=True,
                client_options={"api_endpoint": self._api_endpoint},
            ),
        )

    async def execute(self, creds: Credentials, make_request: Callable[[Resource], Any]) -> Any:
        built: list[Any] = []

        def call() -> Any:
            http = google_auth_httplib2.AuthorizedHttp(creds, http=self._threads.http())
            request = make_request(self._service())
            built[:] = [request]
            return request.execute(http=http)

        def retry_safe() -> bool:
            # Inserts carry their deterministic event id (see tools.retry): a resend is a 409.
            return bool(built) and request_is_retry_safe(built[0].methodId, built[0].body)

        try:
            return await with_retries(lambda: self._threads.run(call), retry_safe=retry_safe)
        except HttpError as exc:
            raise self._translate_http(exc) from None
        except RefreshError as exc:
            # AuthorizedHttp refreshes once on a 401 (e.g. a token revoked early).
            if is_invalid_grant(exc):
                raise ReconnectRequired() from None
            raise CalendarUnavailable() from None
        # OSError includes socket timeouts; HTTPException covers a malformed or cut-off reply.
        except (TransportError, httplib2.HttpLib2Error, http.client.HTTPException, OSError):
            log.warning("calendar API unreachable")
            raise CalendarUnavailable() from None

    @staticmethod
    def _translate_http(exc: HttpError) -> Exception:
        status, reason = exc.status_code, http_reason(exc)
        log.warning("calendar API error", extra={"status": status, "reason": reason})
        if status == 409 and reason == "duplicate":
            return DuplicateEvent()
        if status == 401:
            return ReconnectRequired()
        if status == 403 and reason in ("insufficientPermissions", "forbidden"):
            return CalendarRejected(
                "The calendar owner did not grant the permission this needs; "
                "they must reconnect their calendar."
            )
        if status == 404:
            return EventNotFound()
        if status == 410:
            return EventGone()
        if status in (403, 429) or (status is not None and status >= 500):
            return CalendarUnavailable()
        return CalendarRejected()


class UserCalendar:
    """One user's calendar: credentials bound, refreshed tokens persisted after each call."""

    def __init__(
        self,
        gateway: CalendarGateway,
        provider: CredentialsProvider,
        user_id: str,
        creds: Credentials,
    ) -> None:
        self._gateway = gateway
        self._provider = provider
        self.user_id = user_id
        self._creds = creds

    async def _execute(self, make_request: Callable[[Resource], Any]) -> Any:
        token_before = self._creds.token
        try:
            return await self._gateway.execute(self._creds, make_request)
        except ReconnectRequired:
            await self._provider.mark_needs_reconnect(self.user_id)
            raise
        finally:
            if self._creds.token != token_before:
                # google-auth refreshed inside the request (a 401, or a margin below its own
                # 225 s threshold): a refresh on the hot path after all, so count it.
                metrics.REFRESHES.labels(path="call", outcome="in_client").inc()
                await self._provider.persist(self.user_id, self._creds)

    async def busy(
        self, calendar_ids: list[str], window: Interval, timezone: str
    ) -> list[Interval]:
        """Busy blocks across calendars in one freeBusy query (opaque, non-cancelled events)."""
        body = {
            "timeMin": window.start.astimezone(UTC).isoformat(),
            "timeMax": window.end.astimezone(UTC).isoformat(),
            "timeZone": timezone,
            "items": [{"id": cid} for cid in calendar_ids],
        }
        response = await self._execute(lambda s: s.freebusy().query(body=body))
        busy: list[Interval] = []
        for cid in calendar_ids:
            entry = response.get("calendars", {}).get(cid, {})
            if entry.get("errors"):
                raise CalendarRejected("I could not read that calendar's availability.")
            busy.extend(
                Interval(parse_rfc3339(b["start"]), parse_rfc3339(b["end"]))
                for b in entry.get("busy", [])
            )
        return busy

    async def insert_event(
        self,
        calendar_id: str,
        event: dict[str, Any],
        *,
        send_updates: str = "none",
        conference_data_version: int = 0,
    ) -> dict[str, Any]:
        """`conference_data_version=1` makes Google honour `conferenceData.createRequest`."""
        return await self._execute(
            lambda s: s.events().insert(
                calendarId=calendar_id,
                body=event,
                sendUpdates=send_updates,
                conferenceDataVersion=conference_data_version,
            )
        )

    async def list_events(
        self,
        calendar_id: str,
        *,
        time_min: datetime,
        time_max: datetime | None = None,
        private_properties: dict[str, str] | None = None,
        max_results: int = 2500,
    ) -> list[dict[str, Any]]:
        """Live single events overlapping [time_min, time_max), by start time; one page.

        One page of 2500 covers any realistic booking calendar over the weeks the tools look
        at; following pages would cost a request each inside a voice call's time budget.
        """
        params: dict[str, Any] = {
            "calendarId": calendar_id,
            "timeMin": time_min.astimezone(UTC).isoformat(),
            "singleEvents": True,
            "orderBy": "startTime",
            "maxResults": max_results,
        }
        if time_max is not None:
            params["timeMax"] = time_max.astimezone(UTC).isoformat()
        if private_properties:
            params["privateExtendedProperty"] = [
                f"{key}={value}" for key, value in private_properties.items()
            ]
        response = await self._execute(lambda s: s.events().list(**params))
        return list(response.get("items", []))

    async def patch_event(
        self,
        calendar_id: str,
        event_id: str,
        changes: dict[str, Any],
        *,
        send_updates: str = "none",
    ) -> dict[str, Any]:
        return await self._execute(
            lambda s: s.events().patch(
                calendarId=calendar_id, eventId=event_id, body=changes, sendUpdates=send_updates
            )
        )

    async def delete_event(
        self, calendar_id: str, event_id: str, *, send_updates: str = "none"
    ) -> None:
        """Raises `EventGone` (410) when the event was already deleted."""
        await self._execute(
            lambda s: s.events().delete(
                calendarId=calendar_id, eventId=event_id, sendUpdates=send_updates
            )
        )

    async def get_event(self, calendar_id: str, event_id: str) -> dict[str, Any]:
        return await self._execute(
            lambda s: s.events().get(calendarId=calendar_id, eventId=event_id)
        )

    async def timezone(self) -> str:
        setting = await self._execute(lambda s: s.settings().get(setting="timezone"))
        return setting["value"]
