"""Calendar v3 through google-api-python-client, behind `CalendarProvider`.

Requests are built with the real client library (one built service per process, never per
call) and sent by `http.GoogleHttp` on the event loop with the user's bearer token. A 401 asks
the user's `TokenSource` for a newer token and sends the request once more; every other failure
is translated by `errors.calendar_error`. Event resources become the port's neutral `Event`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httplib2
from googleapiclient.discovery import Resource, build
from googleapiclient.errors import HttpError
from googleapiclient.http import HttpRequest

from vapi_calendar.ports.calendar import BusyTimes, Event, NewEvent, Span, TokenSource
from vapi_calendar.providers.google.errors import (
    TRANSPORT_ERRORS,
    TokenRejected,
    calendar_error,
)
from vapi_calendar.providers.google.http import GoogleHttp
from vapi_calendar.providers.google.retry import request_is_retry_safe, with_retries
from vapi_calendar.providers.meeting_link import await_meeting_link
from vapi_calendar.support.metrics import Metrics
from vapi_calendar.tools.errors import ReconnectRequired


class Resources:
    """The Calendar API's resources, built once from the bundled discovery document.

    Only ever used to *build* requests (pure CPU); `GoogleHttp` sends them. Building a resource
    costs ~0.3 ms, a request from a built one ~0.04 ms, so they are kept, not rebuilt per call.
    """

    def __init__(self, api_endpoint: str) -> None:
        service = build(
            "calendar",
            "v3",
            # Required by build(); never used to send, since requests go through GoogleHttp.
            http=httplib2.Http(),
            cache_discovery=False,
            static_discovery=True,
            client_options={"api_endpoint": api_endpoint},
        )
        self.freebusy: Resource = service.freebusy()
        self.events: Resource = service.events()
        self.settings: Resource = service.settings()


MakeRequest = Callable[[Resources], HttpRequest]

# A calendar asked about in freeBusy that the answer leaves out: its busy time is unknown, which
# must never read as free (it would book over existing events).
NOT_RETURNED = "notReturned"


def parse_rfc3339(value: str) -> datetime:
    """A Google timestamp (`…Z` or with an offset) as an aware UTC datetime."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def _wall_time(moment: datetime, timezone: str) -> dict[str, str]:
    """An event time as Google shows it: local ISO time with offset, and the zone's name."""
    local = moment.astimezone(ZoneInfo(timezone)).isoformat(timespec="seconds")
    return {"dateTime": local, "timeZone": timezone}


def meeting_link(item: Mapping[str, Any]) -> str | None:
    """The video entry point's uri, else `hangoutLink` (Event.conferenceData / hangoutLink)."""
    for entry in (item.get("conferenceData") or {}).get("entryPoints") or ():
        if entry.get("entryPointType") == "video" and entry.get("uri"):
            return str(entry["uri"])
    link = item.get("hangoutLink")
    return str(link) if link else None


def meeting_pending(item: Mapping[str, Any]) -> bool:
    """Whether the conference is still being created: Google says "The data is generated
    asynchronously. To see whether the data is present check the status field"
    (CreateConferenceRequest); it is `pending` until the conference exists."""
    request = (item.get("conferenceData") or {}).get("createRequest") or {}
    return (request.get("status") or {}).get("statusCode") == "pending"


def to_event(item: Mapping[str, Any]) -> Event:
    start, end = item.get("start") or {}, item.get("end") or {}
    timed = "dateTime" in start and "dateTime" in end
    private = (item.get("extendedProperties") or {}).get("private") or {}
    return Event(
        id=str(item["id"]),
        status=str(item.get("status", "confirmed")),
        summary=item.get("summary"),
        start=parse_rfc3339(start["dateTime"]) if timed else None,
        end=parse_rfc3339(end["dateTime"]) if timed else None,
        tags={str(k): str(v) for k, v in private.items()},
        attendees=tuple(str(a["email"]) for a in item.get("attendees") or () if a.get("email")),
        meeting_link=meeting_link(item),
        meeting_pending=meeting_pending(item),
    )


def _events_list(params: dict[str, Any]) -> MakeRequest:
    return lambda api: api.events.list(**params)


def event_body(event: NewEvent) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": event.id,
        "summary": event.summary,
        "description": event.description,
        "start": _wall_time(event.start, event.timezone),
        "end": _wall_time(event.end, event.timezone),
        "attendees": [{"email": email} for email in event.attendees],
        "extendedProperties": {"private": dict(event.tags)},
    }
    if event.add_meeting:
        # requestId must be unique per conference; the event id already is.
        solution = {"type": "hangoutsMeet"}
        body["conferenceData"] = {
            "createRequest": {"requestId": event.id, "conferenceSolutionKey": solution}
        }
    return body


class GoogleCalendarApi:
    """Calendar API calls for any user; implements `ports.calendar.CalendarClient`."""

    def __init__(self, http: GoogleHttp, api_endpoint: str, metrics: Metrics) -> None:
        self._http = http
        self._resources = Resources(api_endpoint)
        self._metrics = metrics

    def for_user(self, tokens: TokenSource) -> GoogleCalendar:
        return GoogleCalendar(self, tokens)

    async def execute(self, token: str, make_request: MakeRequest) -> Any:
        """Send one request with `token`, retried within the budget; failures translated."""
        request = make_request(self._resources)
        # Inserts carry their deterministic event id (see retry.py): a resend is a 409.
        safe = request_is_retry_safe(request.methodId, request.body)
        try:
            return await with_retries(
                lambda: self._http.send(request, token),
                retry_safe=lambda: safe,
                metrics=self._metrics,
            )
        except (HttpError, *TRANSPORT_ERRORS) as exc:
            raise calendar_error(exc, request.methodId) from None


class GoogleCalendar:
    """One user's Google calendars; implements `ports.calendar.CalendarProvider`."""

    def __init__(self, api: GoogleCalendarApi, tokens: TokenSource) -> None:
        self._api = api
        self._tokens = tokens

    async def _execute(self, make_request: MakeRequest) -> Any:
        token = await self._tokens.access_token()
        for _ in range(2):
            try:
                return await self._api.execute(token, make_request)
            except TokenRejected:
                # Google stopped accepting the token before its expiry (revoked early, or the
                # grant changed): once more with a newer one. The token source decides what a
                # second refusal means (it raises `ReconnectRequired`).
                token = await self._tokens.rejected(token)
        raise ReconnectRequired()

    async def busy(
        self, calendar_ids: Sequence[str], start: datetime, end: datetime, timezone: str
    ) -> BusyTimes:
        """One freeBusy query across calendars (opaque, non-cancelled events are busy).

        A calendar Google could not compute still comes back with HTTP 200, its entry carrying
        `errors` ("Optional error(s) (if computation for the calendar failed)", FreeBusyCalendar)
        and an empty `busy` that means unknown, not free; a calendar the answer leaves out is
        unknown too. Both are reported in `unreadable`, never read as free.
        """
        body = {
            "timeMin": start.astimezone(UTC).isoformat(),
            "timeMax": end.astimezone(UTC).isoformat(),
            "timeZone": timezone,
            "items": [{"id": cid} for cid in calendar_ids],
        }
        response = await self._execute(lambda api: api.freebusy.query(body=body))
        busy: list[Span] = []
        unreadable: dict[str, str] = {}
        calendars = response.get("calendars", {})
        for cid in calendar_ids:
            entry = calendars.get(cid)
            if not isinstance(entry, dict):
                unreadable[cid] = NOT_RETURNED
                continue
            if errors := entry.get("errors"):
                unreadable[cid] = str(errors[0].get("reason", "unknown"))
                continue
            busy.extend(
                (parse_rfc3339(b["start"]), parse_rfc3339(b["end"])) for b in entry.get("busy", [])
            )
        return BusyTimes(busy, unreadable)

    async def list_events(
        self,
        calendar_id: str,
        *,
        time_min: datetime,
        time_max: datetime | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> list[Event]:
        """Live single events overlapping [time_min, time_max), by start time, every page.

        A page "may be less than maxResults, or none at all, even if there are more events
        matching the query. Incomplete pages can be detected by a non-empty nextPageToken
        field" (events.list `maxResults`, Calendar v3 reference): so follow `nextPageToken`
        until it is gone, whatever the pages hold. 2500 (the maximum) keeps the usual answer to
        one request; the call's budget bounds how many pages a slow calendar may cost.
        """
        params: dict[str, Any] = {
            "calendarId": calendar_id,
            "timeMin": time_min.astimezone(UTC).isoformat(),
            "singleEvents": True,
            "orderBy": "startTime",
            "maxResults": 2500,
        }
        if time_max is not None:
            params["timeMax"] = time_max.astimezone(UTC).isoformat()
        if tags:
            params["privateExtendedProperty"] = [f"{key}={value}" for key, value in tags.items()]
        items: list[Any] = []
        page: dict[str, Any] = params
        while True:
            response = await self._execute(_events_list(page))
            items.extend(response.get("items", []))
            token = response.get("nextPageToken")
            if not token:
                return [to_event(item) for item in items]
            # Every other parameter stays the same across pages (events.list `pageToken`).
            page = {**params, "pageToken": token}

    async def get_event(self, calendar_id: str, event_id: str) -> Event:
        item = await self._execute(
            lambda api: api.events.get(calendarId=calendar_id, eventId=event_id)
        )
        return to_event(item)

    async def insert_event(self, calendar_id: str, event: NewEvent, *, send_updates: str) -> Event:
        """`conferenceDataVersion=1` makes Google honour `conferenceData.createRequest`."""
        body = event_body(event)
        item = await self._execute(
            lambda api: api.events.insert(
                calendarId=calendar_id,
                body=body,
                sendUpdates=send_updates,
                conferenceDataVersion=1 if event.add_meeting else 0,
            )
        )
        created = to_event(item)
        if created.meeting_pending:
            return await await_meeting_link(
                created, lambda: self.get_event(calendar_id, created.id)
            )
        return created

    async def move_event(
        self,
        calendar_id: str,
        event_id: str,
        start: datetime,
        end: datetime,
        *,
        timezone: str,
        send_updates: str,
    ) -> Event:
        # One patch of start and end: Google applies it as a single write.
        changes = {"start": _wall_time(start, timezone), "end": _wall_time(end, timezone)}
        item = await self._execute(
            lambda api: api.events.patch(
                calendarId=calendar_id, eventId=event_id, body=changes, sendUpdates=send_updates
            )
        )
        return to_event(item)

    async def delete_event(self, calendar_id: str, event_id: str, *, send_updates: str) -> None:
        """Raises `EventGone` (410) when the event was already deleted."""
        await self._execute(
            lambda api: api.events.delete(
                calendarId=calendar_id, eventId=event_id, sendUpdates=send_updates
            )
        )

    async def timezone(self) -> str:
        setting = await self._execute(lambda api: api.settings.get(setting="timezone"))
        return str(setting["value"])
