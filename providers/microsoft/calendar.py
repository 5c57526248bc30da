"""Microsoft Graph calendars behind `CalendarProvider`, over plain HTTP on the event loop.

How the port's promises are kept on Graph (v1.0):
- **Busy time** is `calendarView` (occurrences of recurring series expanded) of each calendar
  asked about, every page (`@odata.nextLink` until it is gone; "the default page size is 10").
  An event is busy unless it is cancelled or shown as `free` or `workingElsewhere`; `tentative`
  counts as busy unless configured otherwise; `oof` and `unknown` are busy. `getSchedule` is not
  used: "Delegated (personal Microsoft account): Not supported", and it hides cancellation.
  A calendar Graph will not read (its code, e.g. ErrorItemNotFound) is reported unreadable,
  never free.
- **Ids.** Every request sends `Prefer: IdType="ImmutableId"`: a default Outlook id "changes if
  the item moves folders" (concepts/outlook-immutable-id.md). Events this server creates are
  presented under the id the tools chose (`NewEvent.id`, kept in a single-value extended
  property next to our tags), so the tools see short ids of their own alphabet whatever the
  provider; they are found again with an extended-property `$filter` on the calendar's events,
  which sees only events still in that calendar (a deleted event sits in Deleted Items, where
  a GET by id may still find it). The Graph id behind each of ours is remembered per process.
- **Create once.** A create carries `transactionId` = our id: "A custom identifier specified by
  a client app for the server to avoid redundant POST operations in case of client retries to
  create the same event". An identical resend answers the event already made; a different body
  under the same id is `ErrorDuplicateTransactionId` → `DuplicateEvent`.
- **Tags** live in single-value extended properties, which Graph returns only when `$expand`ed
  by id ("currently the only way to get" them).
- **Invitations.** Graph has no `sendUpdates`: "When an event is sent, the server sends
  invitations to all the attendees", and changes and cancellations reach them likewise, so
  `send_updates` cannot hold them back. A cancelled meeting goes through `/cancel` (its
  attendees get the cancellation), an event without attendees is deleted.
- **Teams.** `add_meeting` asks for `isOnlineMeeting` with `teamsForBusiness`; the link is
  `onlineMeeting.joinUrl` ("Do not use the onlineMeetingUrl property"). A join URL not there yet
  is re-read within the budget; an account without Teams (personal Microsoft accounts) books
  without a link.
- **Times** are read in UTC (no `Prefer: outlook.timezone`), written as local wall time with the
  event's Windows zone name.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from vapi_calendar.ports.calendar import BusyTimes, Event, NewEvent, Span, TokenSource
from vapi_calendar.providers.meeting_link import await_meeting_link
from vapi_calendar.providers.microsoft import errors
from vapi_calendar.providers.microsoft.errors import (
    TRANSPORT_ERRORS,
    GraphError,
    TokenRejected,
    UnreadableCalendar,
    graph_error,
    graph_failure,
)
from vapi_calendar.providers.microsoft.http import MicrosoftHttp
from vapi_calendar.providers.microsoft.retry import ResentGone, with_retries
from vapi_calendar.providers.microsoft.zones import iana_zone, windows_zone
from vapi_calendar.support.metrics import Metrics
from vapi_calendar.tools.errors import CalendarRejected, EventNotFound, ReconnectRequired

log = logging.getLogger(__name__)

# One fixed property set for this project; "after you have chosen one format for the id, you
# should access that extended property by only that format" (extended-properties-overview).
PROPERTY_SET = "{ffd7214e-8fa6-57f8-8fd2-00530338a333}"
ID_PROPERTY = f"String {PROPERTY_SET} Name vapiCalendar.eventId"
TAGS_PROPERTY = f"String {PROPERTY_SET} Name vapiCalendar.tags"
EXPAND = f"singleValueExtendedProperties($filter=id eq '{ID_PROPERTY}' or id eq '{TAGS_PROPERTY}')"
EVENT_FIELDS = (
    "id,subject,start,end,isAllDay,isCancelled,showAs,attendees,isOnlineMeeting,"
    "onlineMeeting,isOrganizer,type"
)
BUSY_FIELDS = "start,end,isAllDay,isCancelled,showAs"
PREFER_IMMUTABLE = 'IdType="ImmutableId"'
PAGE_SIZE = 250
# Ids the tools choose (`tools.booking.event_id_for`: base32hex, lower case). Graph's own ids
# are base64 with upper-case letters, so the two never mix.
OUR_ID = re.compile(r"^[a-v0-9]{5,1024}$")
# showAs values that leave time free; `tentative` is decided by `tentative_is_busy`.
FREE = frozenset({"free", "workingElsewhere"})
# Listing without an end (upcoming appointments) looks this far ahead at most.
LIST_HORIZON = timedelta(days=3660)
CANCEL_COMMENT = "Cancelled by phone through the voice assistant."
_REMEMBERED = 10_000


def graph_time(value: Mapping[str, Any]) -> datetime:
    """A `dateTimeTimeZone` (7 fractional digits, a Windows or IANA zone) as aware UTC."""
    moment = datetime.fromisoformat(str(value["dateTime"]))
    if moment.tzinfo is None:
        zone = iana_zone(str(value.get("timeZone") or "UTC")) or "UTC"
        moment = moment.replace(tzinfo=ZoneInfo(zone))
    return moment.astimezone(UTC)


def wall_time(moment: datetime, timezone: str) -> dict[str, str]:
    """An event time as Outlook keeps it: local wall time and the zone's Windows name (UTC
    when CLDR has none for the zone)."""
    windows = windows_zone(timezone)
    if windows is None:
        return {
            "dateTime": moment.astimezone(UTC).replace(tzinfo=None).isoformat(),
            "timeZone": "UTC",
        }
    local = moment.astimezone(ZoneInfo(timezone)).replace(tzinfo=None)
    return {"dateTime": local.isoformat(timespec="seconds"), "timeZone": windows}


def utc_literal(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def odata_string(value: str) -> str:
    """An OData string literal (a quote inside is doubled)."""
    return "'" + value.replace("'", "''") + "'"


def graph_url(base: str, path: str, params: Mapping[str, str] | None = None) -> str:
    """A Graph URL with every query value percent-encoded ("URL-encode colon, slash and
    space"; `$` of the system query options stays as it is)."""
    if not params:
        return f"{base}{path}"
    query = "&".join(f"{key}={quote(value, safe='')}" for key, value in params.items())
    return f"{base}{path}?{query}"


def _properties(item: Mapping[str, Any]) -> dict[str, str]:
    # Graph may answer the id in another case than it was written; compare without it.
    return {
        str(p.get("id", "")).lower(): str(p.get("value", ""))
        for p in item.get("singleValueExtendedProperties") or ()
        if isinstance(p, dict)
    }


def _tags(text: str | None) -> dict[str, str]:
    try:
        loaded = json.loads(text) if text else {}
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}


def tags_json(tags: Mapping[str, str]) -> str:
    return json.dumps(dict(tags), sort_keys=True, separators=(",", ":"))


def meeting_link(item: Mapping[str, Any]) -> str | None:
    link = (item.get("onlineMeeting") or {}).get("joinUrl")
    return str(link) if link else None


def to_event(
    item: Mapping[str, Any], *, our_id: str | None = None, tags: Mapping[str, str] | None = None
) -> Event:
    props = _properties(item)
    timed = not item.get("isAllDay") and "start" in item and "end" in item
    online = bool(item.get("isOnlineMeeting"))
    link = meeting_link(item)
    return Event(
        id=props.get(ID_PROPERTY.lower()) or our_id or str(item["id"]),
        status="cancelled" if item.get("isCancelled") else "confirmed",
        summary=item.get("subject"),
        start=graph_time(item["start"]) if timed else None,
        end=graph_time(item["end"]) if timed else None,
        tags=_tags(props.get(TAGS_PROPERTY.lower()))
        if TAGS_PROPERTY.lower() in props
        else dict(tags or {}),
        attendees=tuple(
            str(address)
            for a in item.get("attendees") or ()
            if (address := (a.get("emailAddress") or {}).get("address"))
        ),
        meeting_link=link,
        meeting_pending=online and link is None,
    )


def event_body(event: NewEvent) -> dict[str, Any]:
    body: dict[str, Any] = {
        "subject": event.summary,
        "body": {"contentType": "text", "content": event.description},
        "start": wall_time(event.start, event.timezone),
        "end": wall_time(event.end, event.timezone),
        "attendees": [
            {"emailAddress": {"address": email}, "type": "required"} for email in event.attendees
        ],
        # Attendees may not propose other times: the booking rules decide what is free.
        "allowNewTimeProposals": False,
        "transactionId": event.id,
        "singleValueExtendedProperties": [
            {"id": ID_PROPERTY, "value": event.id},
            {"id": TAGS_PROPERTY, "value": tags_json(event.tags)},
        ],
    }
    if event.add_meeting:
        body["isOnlineMeeting"] = True
        body["onlineMeetingProvider"] = "teamsForBusiness"
    return body


def calendar_path(calendar_id: str) -> str:
    if calendar_id == "primary":
        return "/me/calendar"
    return f"/me/calendars/{quote(calendar_id, safe='')}"


@dataclass(frozen=True, slots=True)
class Known:
    """What a move or a cancel needs to know about one of our events."""

    graph_id: str
    tags: Mapping[str, str]
    attendees: tuple[str, ...]


class MicrosoftCalendarApi:
    """Graph calendar calls for any user; implements `ports.calendar.CalendarClient`."""

    def __init__(
        self, http: MicrosoftHttp, graph: str, metrics: Metrics, *, tentative_is_busy: bool = True
    ) -> None:
        self._http = http
        self._graph = graph.rstrip("/")
        self._metrics = metrics
        self.tentative_is_busy = tentative_is_busy
        # Our id → the Graph id behind it (immutable ids never change within a mailbox). A
        # Graph id is only valid with its own mailbox's token, so a stale or foreign entry can
        # only ever answer "not found".
        self._known: OrderedDict[str, Known] = OrderedDict()

    def for_user(self, tokens: TokenSource) -> MicrosoftCalendar:
        return MicrosoftCalendar(self, tokens)

    def url(self, path: str, params: Mapping[str, str] | None = None) -> str:
        return graph_url(self._graph, path, params)

    def remember(self, our_id: str, known: Known) -> None:
        self._known[our_id] = known
        self._known.move_to_end(our_id)
        while len(self._known) > _REMEMBERED:
            self._known.popitem(last=False)

    def recall(self, our_id: str) -> Known | None:
        return self._known.get(our_id)

    def forget(self, our_id: str) -> None:
        self._known.pop(our_id, None)

    async def send(
        self,
        token: str,
        method: str,
        url: str,
        *,
        operation: str,
        body: Any = None,
        gone_is_done: bool = False,
    ) -> dict[str, Any]:
        """One Graph request with `token`, retried within the budget; failures translated."""
        headers = {
            "authorization": f"Bearer {token}",
            "prefer": PREFER_IMMUTABLE,
            "accept": "application/json",
        }

        async def attempt() -> dict[str, Any]:
            reply = await self._http.send(method, url, headers=headers, json_body=body)
            if reply.status >= 400:
                raise graph_failure(reply)
            return reply.body

        try:
            return await with_retries(attempt, metrics=self._metrics, gone_is_done=gone_is_done)
        except ResentGone:
            return {}
        except (GraphError, *TRANSPORT_ERRORS) as exc:
            raise graph_error(exc, operation) from None


class MicrosoftCalendar:
    """One user's Outlook calendars; implements `ports.calendar.CalendarProvider`."""

    def __init__(self, api: MicrosoftCalendarApi, tokens: TokenSource) -> None:
        self._api = api
        self._tokens = tokens
        self._token: str | None = None
        self._renewing = asyncio.Lock()

    async def _send(
        self,
        method: str,
        url: str,
        *,
        operation: str,
        body: Any = None,
        gone_is_done: bool = False,
    ) -> dict[str, Any]:
        token = self._token or await self._tokens.access_token()
        for _ in range(2):
            try:
                return await self._api.send(
                    token, method, url, operation=operation, body=body, gone_is_done=gone_is_done
                )
            except TokenRejected:
                # Refused before its expiry (revoked early): once more with a newer token. Two
                # requests of one call refused together ask for one renewal, not two (a second
                # renewal would read as "even the new token was refused").
                async with self._renewing:
                    if self._token in (None, token):
                        self._token = await self._tokens.rejected(token)
                    token = self._token
        raise ReconnectRequired()

    async def _pages(self, url: str, *, operation: str) -> list[dict[str, Any]]:
        """Every item of a collection: follow `@odata.nextLink` until there is none."""
        items: list[dict[str, Any]] = []
        next_url: str | None = url
        while next_url:
            page = await self._send("GET", next_url, operation=operation)
            items.extend(item for item in page.get("value") or () if isinstance(item, dict))
            link = page.get("@odata.nextLink")
            next_url = str(link) if link else None
        return items

    def _view_url(
        self, calendar_id: str, start: datetime, end: datetime, fields: str, *, tags: bool
    ) -> str:
        params = {
            # "interpreted using the timezone offset specified in the value": send UTC.
            "startDateTime": utc_literal(start) + "Z",
            "endDateTime": utc_literal(end) + "Z",
            "$select": fields,
            "$top": str(PAGE_SIZE),
        }
        if tags:
            params["$expand"] = EXPAND
        return self._api.url(f"{calendar_path(calendar_id)}/calendarView", params)

    def _is_busy(self, item: Mapping[str, Any]) -> bool:
        if item.get("isCancelled"):
            return False
        show_as = item.get("showAs") or "busy"
        if show_as == "tentative":
            return self._api.tentative_is_busy
        return show_as not in FREE

    async def _busy_of(self, calendar_id: str, start: datetime, end: datetime) -> list[Span]:
        items = await self._pages(
            self._view_url(calendar_id, start, end, BUSY_FIELDS, tags=False), operation=errors.BUSY
        )
        return [(graph_time(i["start"]), graph_time(i["end"])) for i in items if self._is_busy(i)]

    async def busy(
        self, calendar_ids: Sequence[str], start: datetime, end: datetime, timezone: str
    ) -> BusyTimes:
        """One calendarView per calendar (Graph has no multi-calendar read but getSchedule),
        concurrently; a calendar Graph refuses is unreadable, with Graph's code."""
        answers = await asyncio.gather(
            *(self._busy_of(cid, start, end) for cid in calendar_ids), return_exceptions=True
        )
        busy: list[Span] = []
        unreadable: dict[str, str] = {}
        for cid, answer in zip(calendar_ids, answers, strict=True):
            if isinstance(answer, UnreadableCalendar):
                unreadable[cid] = answer.reason
            elif isinstance(answer, BaseException):
                raise answer
            else:
                busy.extend(answer)
        return BusyTimes(sorted(busy), unreadable)

    def _remember(self, event: Event, graph_id: str) -> Event:
        if OUR_ID.match(event.id) and event.id != graph_id:
            self._api.remember(event.id, Known(graph_id, event.tags, event.attendees))
        return event

    def _read(self, item: dict[str, Any]) -> Event:
        return self._remember(to_event(item), str(item["id"]))

    async def list_events(
        self,
        calendar_id: str,
        *,
        time_min: datetime,
        time_max: datetime | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> list[Event]:
        """Live events overlapping [time_min, time_max), by start time, every page.

        With `tags` (our own bookings): the calendar's events filtered by our tags property
        on the server — "contains" narrows, the exact match is checked here — and by time
        (ours are single events, so nothing needs expanding). Without: its calendarView.
        """
        end = time_max or time_min + LIST_HORIZON
        if tags:
            clauses = [
                "singleValueExtendedProperties/Any(ep: ep/id eq "
                f"{odata_string(TAGS_PROPERTY)} and contains(ep/value, "
                f"{odata_string(tags_json({key: value})[1:-1])}))"
                for key, value in tags.items()
            ]
            clauses.append(f"end/dateTime gt {odata_string(utc_literal(time_min))}")
            clauses.append(f"start/dateTime lt {odata_string(utc_literal(end))}")
            url = self._api.url(
                f"{calendar_path(calendar_id)}/events",
                {
                    "$filter": " and ".join(clauses),
                    "$expand": EXPAND,
                    "$select": EVENT_FIELDS,
                    "$top": str(PAGE_SIZE),
                },
            )
            items = await self._pages(url, operation=errors.LIST)
        else:
            view = self._view_url(calendar_id, time_min, end, EVENT_FIELDS, tags=True)
            items = await self._pages(view, operation=errors.LIST)
        events = [self._read(item) for item in items]
        live = [
            e
            for e in events
            if not e.cancelled
            and all(e.tags.get(k) == v for k, v in (tags or {}).items())
            and (e.start is None or e.end is None or (e.end > time_min and e.start < end))
        ]
        return sorted(live, key=lambda e: e.start or time_min)

    async def _find_ours(self, calendar_id: str, our_id: str) -> dict[str, Any]:
        url = self._api.url(
            f"{calendar_path(calendar_id)}/events",
            {
                "$filter": "singleValueExtendedProperties/Any(ep: ep/id eq "
                f"{odata_string(ID_PROPERTY)} and ep/value eq {odata_string(our_id)})",
                "$expand": EXPAND,
                "$select": EVENT_FIELDS,
            },
        )
        found = (await self._send("GET", url, operation=errors.GET)).get("value") or []
        if not found or not isinstance(found[0], dict):
            self._api.forget(our_id)
            raise EventNotFound()
        return found[0]

    async def get_event(self, calendar_id: str, event_id: str) -> Event:
        if OUR_ID.match(event_id):
            return self._read(await self._find_ours(calendar_id, event_id))
        url = self._api.url(
            f"{calendar_path(calendar_id)}/events/{quote(event_id, safe='')}",
            {"$expand": EXPAND, "$select": EVENT_FIELDS},
        )
        return self._read(await self._send("GET", url, operation=errors.GET))

    async def _known(self, calendar_id: str, event_id: str) -> Known:
        if OUR_ID.match(event_id) and (known := self._api.recall(event_id)) is not None:
            return known
        event = await self.get_event(calendar_id, event_id)
        return self._api.recall(event.id) or Known(event_id, event.tags, event.attendees)

    async def insert_event(self, calendar_id: str, event: NewEvent, *, send_updates: str) -> Event:
        """Create the event; a retried create is answered by Graph from its transactionId."""
        item = await self._send(
            "POST",
            self._api.url(f"{calendar_path(calendar_id)}/events"),
            operation=errors.CREATE,
            body=event_body(event),
        )
        # A create's answer carries no extended properties: they are what was just written.
        created = self._remember(to_event(item, our_id=event.id, tags=event.tags), str(item["id"]))
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
        """One PATCH of start and end: a single write of the item."""
        known = await self._known(calendar_id, event_id)
        item = await self._send(
            "PATCH",
            self._api.url(f"{calendar_path(calendar_id)}/events/{quote(known.graph_id, safe='')}"),
            operation=errors.MOVE,
            body={"start": wall_time(start, timezone), "end": wall_time(end, timezone)},
        )
        return to_event(item, our_id=event_id, tags=known.tags)

    async def delete_event(self, calendar_id: str, event_id: str, *, send_updates: str) -> None:
        """`/cancel` a meeting (its attendees hear of it), delete anything else; `EventGone`
        when it is gone already."""
        known = await self._known(calendar_id, event_id)
        path = f"{calendar_path(calendar_id)}/events/{quote(known.graph_id, safe='')}"
        if known.attendees:
            await self._send(
                "POST",
                self._api.url(f"{path}/cancel"),
                operation=errors.DELETE,
                body={"comment": CANCEL_COMMENT},
                gone_is_done=True,
            )
        else:
            await self._send(
                "DELETE", self._api.url(path), operation=errors.DELETE, gone_is_done=True
            )
        self._api.forget(event_id)

    async def timezone(self) -> str:
        """The mailbox's zone as IANA (Outlook keeps a Windows name, sometimes an IANA one)."""
        settings = await self._send(
            "GET",
            self._api.url("/me/mailboxSettings", {"$select": "timeZone"}),
            operation=errors.SETTINGS,
        )
        name = settings.get("timeZone")
        zone = iana_zone(name if isinstance(name, str) else None)
        if zone is None:
            log.warning("mailbox time zone has no IANA equivalent", extra={"zone": name})
            raise CalendarRejected()
        return zone
