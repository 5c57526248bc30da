"""The Graph v1.0 calendar subset: mailboxSettings, calendarView, events, cancel.

As Graph's reference has it (api-reference/v1.0, resources/event.md):
- Times are answered in UTC unless the request wrote them: a create or an update answers in the
  zone its body used. `dateTime` has seven fractional digits.
- Item ids change when an item moves folders (deleting moves it to Deleted Items) unless the
  request sends `Prefer: IdType="ImmutableId"`; both kinds are accepted in paths.
- Extended properties are returned only when `$expand`ed by id; `$filter` on them (`Any`) works
  on the events of a calendar, with `eq`/`ne`/`contains` on the value (case-insensitive).
- calendarView needs `startDateTime` and `endDateTime`, expands recurring series, and pages
  (10 per page unless `$top`) with `@odata.nextLink`.
- `transactionId`: an identical create under a used id answers the event already made (201,
  nothing new); a different body is 400 `ErrorDuplicateTransactionId`.
- `/cancel` is for organizers (others get 400) and moves the event to Deleted Items (202);
  DELETE answers 204, then 404 once it is gone for good.
- 401 `InvalidAuthenticationToken`; 403 `ErrorAccessDenied` without the scope; 404
  `MailboxNotEnabledForRESTAPI` without a mailbox; 429 `ApplicationThrottled` with Retry-After
  above the mailbox's concurrency limit (4).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import DAILY, WEEKLY, rrule, weekday, weekdays
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from tzlocal.windows_tz import win_tz

from vapi_calendar.emulator.microsoft.errors import GraphApiError, fault_response
from vapi_calendar.emulator.microsoft.state import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    Mailbox,
    MicrosoftState,
    MsAccount,
    new_item_id,
    regular_id,
)

DELETED_ITEMS = "deleteditems"
GONE = "gone"  # deleted from Deleted Items too: no id finds it any more
SHOW_AS = frozenset({"free", "tentative", "busy", "oof", "workingElsewhere", "unknown"})
THROTTLE_RETRY_AFTER = 1  # seconds, as Graph suggests for a concurrency throttle
_READ = frozenset({"calendars.read", "calendars.readwrite"})
_WRITE = frozenset({"calendars.readwrite"})
_SETTINGS = frozenset({"mailboxsettings.read", "mailboxsettings.readwrite"})
_ALWAYS = ("id",)
Handler = Callable[[Request, MsAccount, Mailbox, bool], Awaitable[Response]]


# -- times ---------------------------------------------------------------------------------------


def zone_of(name: str | None) -> ZoneInfo:
    """A Graph time-zone name (Windows, IANA, or UTC) as a zone; 400 when unknown."""
    if not name:
        raise GraphApiError(
            400,
            "TimeZoneNotSupportedException",
            "A valid TimeZone value must be specified. The following TimeZone value is not "
            "supported: ''.",
        )
    iana = win_tz.get(name, name)
    try:
        return ZoneInfo(iana)
    except (ZoneInfoNotFoundError, ValueError):
        raise GraphApiError(
            400,
            "TimeZoneNotSupportedException",
            "A valid TimeZone value must be specified. The following TimeZone value is not "
            f"supported: '{name}'.",
        ) from None


def read_time(value: Any, field: str) -> tuple[datetime, str]:
    """A `dateTimeTimeZone` of a request body: the instant (aware UTC) and the zone name."""
    if not isinstance(value, dict) or not value.get("dateTime"):
        raise GraphApiError(400, "ErrorInvalidRequest", f"{field}: dateTime is required.")
    name = str(value.get("timeZone") or "")
    zone = zone_of(name)
    try:
        moment = datetime.fromisoformat(str(value["dateTime"]))
    except ValueError:
        raise GraphApiError(
            400, "ErrorInvalidRequest", f"Cannot convert the literal to {field}."
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC), name


def query_time(value: str | None, field: str) -> datetime:
    """calendarView bounds: "interpreted using the timezone offset specified in the value…
    If no timezone offset is included… interpreted as UTC"."""
    if not value:
        raise GraphApiError(
            400,
            "ErrorInvalidParameter",
            f"This request requires a time window specified by the query string parameters "
            f"StartDateTime and EndDateTime. {field} is missing.",
        )
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise GraphApiError(400, "ErrorInvalidParameter", f"{field} is not valid.") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def write_time(moment: datetime, zone_name: str | None) -> dict[str, str]:
    """A time as Graph answers it: in `zone_name`, or UTC; seven fractional digits."""
    if zone_name and zone_name != "UTC":
        local = moment.astimezone(zone_of(zone_name)).replace(tzinfo=None)
        return {"dateTime": local.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": zone_name}
    naive = moment.astimezone(UTC).replace(tzinfo=None)
    return {"dateTime": naive.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": "UTC"}


# -- recurrence ------------------------------------------------------------------------------------

_DAYS = dict(
    zip(
        ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"),
        weekdays,
        strict=True,
    )
)
MAX_OCCURRENCES = 1000


def occurrences(
    event: dict[str, Any], start: datetime, end: datetime
) -> list[tuple[datetime, datetime]]:
    """(start, end) of each occurrence of a series overlapping [start, end), wall-clock in the
    series' zone (patternedRecurrence: daily or weekly, numbered / endDate / noEnd)."""
    recurrence = event["recurrence"]
    pattern, span = recurrence.get("pattern") or {}, recurrence.get("range") or {}
    zone = zone_of(event["_zone"])
    first = event["_start"].astimezone(zone).replace(tzinfo=None)
    length = event["_end"] - event["_start"]
    kind = pattern.get("type")
    if kind not in ("daily", "weekly"):
        raise GraphApiError(400, "ErrorInvalidRecurrence", f"Unsupported pattern {kind!r}.")
    options: dict[str, Any] = {"dtstart": first, "interval": int(pattern.get("interval") or 1)}
    if kind == "weekly":
        days: list[weekday] = [_DAYS[d.lower()] for d in pattern.get("daysOfWeek") or ()]
        options["byweekday"] = days or None
    if span.get("type") == "numbered":
        options["count"] = int(span["numberOfOccurrences"])
    elif span.get("type") == "endDate":
        options["until"] = datetime.combine(date.fromisoformat(span["endDate"]), time(23, 59, 59))
    else:
        options["count"] = MAX_OCCURRENCES
    found = []
    for local in rrule(DAILY if kind == "daily" else WEEKLY, **options):
        begin = local.replace(tzinfo=zone).astimezone(UTC)
        if begin >= end:
            break
        if begin + length > start:
            found.append((begin, begin + length))
    return found


# -- rendering ---------------------------------------------------------------------------------


def _prefers_immutable(request: Request) -> bool:
    return bool(re.search(r'IdType\s*=\s*"?ImmutableId"?', request.headers.get("prefer", ""), re.I))


def _property_key(prop_id: str) -> str:
    """Extended property ids compare with the set's GUID in any case, the name exactly."""
    parts = prop_id.split(" ", 3)
    if len(parts) == 4 and parts[2].lower() == "name":
        return f"{parts[0].lower()} {parts[1].lower()} name {parts[3]}"
    return prop_id


def _expanded_ids(request: Request) -> set[str] | None:
    expand = request.query_params.get("$expand")
    if not expand:
        return None
    match = re.fullmatch(r"singleValueExtendedProperties\(\$filter=(.*)\)", expand.strip())
    if match is None:
        raise GraphApiError(400, "BadRequest", f"Parsing OData $expand failed: {expand}")
    ids = re.findall(r"id eq '((?:[^']|'')*)'", match.group(1))
    if not ids:
        raise GraphApiError(400, "BadRequest", "An $expand of extended properties needs ids.")
    return {_property_key(i.replace("''", "'")) for i in ids}


def _selected(request: Request) -> set[str] | None:
    select = request.query_params.get("$select")
    return {f.strip() for f in select.split(",") if f.strip()} if select else None


def render(
    event: dict[str, Any],
    request: Request,
    *,
    zone: str | None = None,
    occurrence: tuple[datetime, datetime] | None = None,
) -> dict[str, Any]:
    """An event as Graph answers it to this request."""
    start, end = occurrence or (event["_start"], event["_end"])
    immutable = _prefers_immutable(request)
    item_id = event["_id"] if immutable else regular_id(event["_id"], event["_folder"])
    if occurrence is not None:
        item_id = f"{item_id}OCC{start.strftime('%Y%m%dT%H%M%S')}"
    body: dict[str, Any] = {
        "@odata.etag": f'W/"{event["changeKey"]}"',
        "id": item_id,
        "createdDateTime": event["createdDateTime"],
        "lastModifiedDateTime": event["lastModifiedDateTime"],
        "changeKey": event["changeKey"],
        "transactionId": event.get("transactionId"),
        "iCalUId": event["iCalUId"],
        "subject": event.get("subject", ""),
        "body": event.get("body") or {"contentType": "text", "content": ""},
        "isAllDay": bool(event.get("isAllDay")),
        "isCancelled": bool(event.get("isCancelled")),
        "isOrganizer": bool(event.get("isOrganizer", True)),
        "showAs": event.get("showAs", "busy"),
        "type": "occurrence" if occurrence else event.get("type", "singleInstance"),
        "seriesMasterId": event["_id"] if occurrence else None,
        "start": write_time(start, zone),
        "end": write_time(end, zone),
        "recurrence": None if occurrence else event.get("recurrence"),
        "attendees": event.get("attendees") or [],
        "allowNewTimeProposals": event.get("allowNewTimeProposals", True),
        "isOnlineMeeting": bool(event.get("isOnlineMeeting")),
        "onlineMeetingProvider": event.get("onlineMeetingProvider", "unknown"),
        "onlineMeeting": event.get("onlineMeeting"),
        "organizer": {"emailAddress": {"address": event["_owner"]}},
    }
    selected = _selected(request)
    if selected is not None:
        body = {k: v for k, v in body.items() if k in selected or k in _ALWAYS or k.startswith("@")}
    wanted = _expanded_ids(request)
    if wanted is not None:
        props = [
            {"id": prop_id, "value": value}
            for prop_id, value in event.get("_props", {}).items()
            if _property_key(prop_id) in wanted
        ]
        if props:
            body["singleValueExtendedProperties"] = props
    return body


# -- $filter ---------------------------------------------------------------------------------------

_ANY = re.compile(
    r"singleValueExtendedProperties/any\(ep:\s*ep/id eq '((?:[^']|'')*)' and "
    r"(?:ep/value (eq|ne) '((?:[^']|'')*)'|contains\(ep/value,\s*'((?:[^']|'')*)'\))\)$",
    re.I,
)
_TIME = re.compile(r"(start|end)/dateTime (lt|le|gt|ge|eq) '([^']*)'$", re.I)


def _clauses(text: str) -> list[str]:
    """Split on top-level ` and ` (outside parentheses and quotes)."""
    parts, depth, quoted, current, i = [], 0, False, "", 0
    while i < len(text):
        char = text[i]
        if char == "'":
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
        if not quoted and depth == 0 and text[i : i + 5].lower() == " and ":
            parts.append(current.strip())
            current, i = "", i + 5
            continue
        current += char
        i += 1
    parts.append(current.strip())
    return [p for p in parts if p]


Test = Callable[[dict[str, Any]], bool]


def _compare(op: str, left: str, right: str) -> bool:
    return {
        "lt": left < right,
        "le": left <= right,
        "gt": left > right,
        "ge": left >= right,
        "eq": left == right,
    }[op]


def parse_filter(text: str) -> list[Test]:
    tests: list[Test] = []
    for clause in _clauses(text):
        if match := _ANY.match(clause):
            key = _property_key(match.group(1).replace("''", "'"))
            op, value, needle = match.group(2), match.group(3), match.group(4)

            def has(
                event: dict[str, Any],
                key: str = key,
                op: str | None = op,
                value: str | None = value,
                needle: str | None = needle,
            ) -> bool:
                for prop_id, stored in event.get("_props", {}).items():
                    if _property_key(prop_id) != key:
                        continue
                    text = stored.lower()
                    if needle is not None:
                        return needle.replace("''", "'").lower() in text
                    assert value is not None
                    same = text == value.replace("''", "'").lower()
                    return same if op and op.lower() == "eq" else not same
                return False

            tests.append(has)
        elif match := _TIME.match(clause):
            which, op, literal = match.group(1).lower(), match.group(2).lower(), match.group(3)
            try:
                bound = datetime.fromisoformat(literal).replace(tzinfo=UTC)
            except ValueError:
                raise GraphApiError(400, "BadRequest", "Invalid filter clause") from None

            def in_time(
                event: dict[str, Any], which: str = which, op: str = op, bound: datetime = bound
            ) -> bool:
                moment = event["_start"] if which == "start" else event["_end"]
                return _compare(op, moment.isoformat(), bound.isoformat())

            tests.append(in_time)
        else:
            raise GraphApiError(400, "BadRequest", "Invalid filter clause")
    return tests


# -- paging ----------------------------------------------------------------------------------------


def page(state: MicrosoftState, request: Request, items: list[dict[str, Any]]) -> dict[str, Any]:
    try:
        top = int(request.query_params.get("$top") or DEFAULT_PAGE_SIZE)
        skip = int(request.query_params.get("$skiptoken") or 0)
    except ValueError:
        raise GraphApiError(400, "BadRequest", "Invalid $top or $skiptoken.") from None
    size = max(1, min(top, MAX_PAGE_SIZE))
    forced = state.settings()["page_size"]
    if forced is not None:
        size = min(size, forced)
    chunk = items[skip : skip + size]
    body: dict[str, Any] = {
        "@odata.context": f"{request.url.scheme}://{request.url.netloc}/v1.0/$metadata",
        "value": chunk,
    }
    if skip + size < len(items):
        body["@odata.nextLink"] = str(
            request.url.include_query_params(**{"$skiptoken": skip + size})
        )
    return body


# -- routes ------------------------------------------------------------------------------------


def _digest(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")


def _change_key() -> str:
    return new_item_id()[-12:]


def build_event(body: dict[str, Any], account: MsAccount, cid: str) -> dict[str, Any]:
    """A new event from a create body (or a seeded one), validated as Graph does."""
    start, zone = read_time(body.get("start"), "start")
    end, _ = read_time(body.get("end"), "end")
    if end < start:
        raise GraphApiError(
            400, "ErrorInvalidRequest", "The end time must be after the start time."
        )
    show_as = body.get("showAs", "busy")
    if show_as not in SHOW_AS:
        raise GraphApiError(400, "BadRequest", f"Invalid showAs {show_as!r}.")
    now = _now_text()
    # Personal accounts cannot host Teams meetings ("teamsForBusiness" is not among their
    # allowedOnlineMeetingProviders): the event is made without one.
    online = bool(body.get("isOnlineMeeting")) and not account.personal
    event: dict[str, Any] = {
        "_id": new_item_id(),
        "_folder": cid,
        "_owner": account.email,
        "_start": start,
        "_end": end,
        "_zone": zone,
        "_props": {
            str(p["id"]): str(p["value"])
            for p in body.get("singleValueExtendedProperties") or ()
            if isinstance(p, dict) and "id" in p
        },
        "_digest": _digest(body),
        "createdDateTime": now,
        "lastModifiedDateTime": now,
        "changeKey": _change_key(),
        "iCalUId": "040000008200E00074C5B7101A82E008" + new_item_id()[-24:],
        "subject": body.get("subject", ""),
        "body": body.get("body"),
        "isAllDay": bool(body.get("isAllDay")),
        "isCancelled": bool(body.get("isCancelled")),
        "isOrganizer": bool(body.get("isOrganizer", True)),
        "showAs": show_as,
        "attendees": [
            {
                "type": a.get("type", "required"),
                "status": {"response": "none", "time": "0001-01-01T00:00:00Z"},
                "emailAddress": a.get("emailAddress") or {},
            }
            for a in body.get("attendees") or ()
            if isinstance(a, dict)
        ],
        "allowNewTimeProposals": body.get("allowNewTimeProposals", True),
        "transactionId": body.get("transactionId"),
        "recurrence": body.get("recurrence"),
        "type": "seriesMaster" if body.get("recurrence") else "singleInstance",
        "isOnlineMeeting": online,
        "onlineMeetingProvider": body.get("onlineMeetingProvider", "unknown")
        if online
        else "unknown",
        "onlineMeeting": None,
    }
    if event["recurrence"]:
        occurrences(event, start, start + timedelta(days=1))  # validates the pattern
    return event


def _json_body(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise GraphApiError(400, "BadRequest", "Unable to read JSON request payload.")
    return body


def make_routes(state: MicrosoftState) -> list[Route]:
    def authorize(request: Request, needed: frozenset[str]) -> tuple[MsAccount, Mailbox]:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        access = state.check_access_token(token.strip()) if scheme.lower() == "bearer" else None
        if access is None:
            raise GraphApiError(
                401,
                "InvalidAuthenticationToken",
                "Access token has expired or is not yet valid."
                if token
                else "Access token is empty.",
            )
        account = state.get_account(access.email)
        mailbox = state.mailbox(access.email)
        if account is None or mailbox is None:
            raise GraphApiError(
                401, "InvalidAuthenticationToken", "Access token validation failure."
            )
        if not account.has_mailbox:
            raise GraphApiError(404, "MailboxNotEnabledForRESTAPI")
        granted = {s.lower().removeprefix("https://graph.microsoft.com/") for s in access.scopes}
        if not needed & granted:
            raise GraphApiError(403, "ErrorAccessDenied")
        return account, mailbox

    def endpoint(
        kind: str, needed: frozenset[str], handler: Handler, scoped: bool
    ) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            decision = state.begin_request(kind)
            account, mailbox = authorize(request, needed)
            # Requests in flight per mailbox are counted while they are served (latency
            # included), so concurrent callers really meet the limit.
            if not state.enter_mailbox(mailbox):
                raise GraphApiError(429, "ApplicationThrottled", retry_after=THROTTLE_RETRY_AFTER)
            try:
                if decision.delay_s > 0:
                    await asyncio.sleep(decision.delay_s)
                if decision.fault is not None and decision.fault.status is not None:
                    return fault_response(kind, decision.fault)
                return await handler(request, account, mailbox, scoped)
            finally:
                state.leave_mailbox(mailbox)

        return handle

    def calendar_id(request: Request, mailbox: Mailbox) -> str:
        cid = request.path_params.get("cid")
        if cid is None:
            return mailbox.default_calendar
        if cid not in mailbox.calendars:
            raise GraphApiError(404, "ErrorItemNotFound")
        return str(cid)

    def event_in(request: Request, mailbox: Mailbox, scoped: bool) -> dict[str, Any]:
        """The event a path names. Under a calendar only while it is in that calendar; under
        /me/events wherever it is in the mailbox (Deleted Items included)."""
        event = state.find_event(mailbox, request.path_params["eid"])
        if event is None or event["_folder"] == GONE:
            raise GraphApiError(404, "ErrorItemNotFound")
        if scoped and event["_folder"] != calendar_id(request, mailbox):
            raise GraphApiError(404, "ErrorItemNotFound")
        return event

    def with_join_url(mailbox: Mailbox, event: dict[str, Any], *, read: bool) -> dict[str, Any]:
        """Teams join URLs may arrive after the create; a read can find them there."""
        if (
            event.get("isOnlineMeeting")
            and not event.get("onlineMeeting")
            and state.join_url_ready(event["_id"], read=read)
        ):
            join = "https://teams.microsoft.com/l/meetup-join/19%3ameeting_" + event["_id"][-24:]
            event["onlineMeeting"] = {"joinUrl": join}
            state.put_event(mailbox, event)
        return event

    async def mailbox_settings(
        request: Request, account: MsAccount, mailbox: Mailbox, scoped: bool
    ) -> Response:
        body: dict[str, Any] = {
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users('me')/"
            "mailboxSettings",
            "timeZone": account.timezone,
            "language": {"locale": "en-US", "displayName": "English (United States)"},
            "workingHours": {
                "daysOfWeek": ["monday", "tuesday", "wednesday", "thursday", "friday"],
                "startTime": "08:00:00.0000000",
                "endTime": "17:00:00.0000000",
                "timeZone": {"name": account.timezone},
            },
        }
        selected = _selected(request)
        if selected is not None:
            body = {k: v for k, v in body.items() if k in selected or k.startswith("@")}
        return JSONResponse(body)

    async def calendar(
        request: Request, account: MsAccount, mailbox: Mailbox, scoped: bool
    ) -> Response:
        cid = calendar_id(request, mailbox)
        providers = [] if account.personal else ["teamsForBusiness"]
        return JSONResponse(
            {
                "id": cid,
                "name": mailbox.calendars[cid],
                "canEdit": True,
                "isDefaultCalendar": cid == mailbox.default_calendar,
                "allowedOnlineMeetingProviders": providers,
                "defaultOnlineMeetingProvider": providers[0] if providers else "none",
                "owner": {"address": account.email},
            }
        )

    async def calendar_view(
        request: Request, account: MsAccount, mailbox: Mailbox, scoped: bool
    ) -> Response:
        cid = calendar_id(request, mailbox)
        start = query_time(request.query_params.get("startDateTime"), "StartDateTime")
        end = query_time(request.query_params.get("endDateTime"), "EndDateTime")
        found: list[tuple[datetime, dict[str, Any]]] = []
        for event in state.events(mailbox):
            if event["_folder"] != cid:
                continue
            if event.get("recurrence"):
                for span in occurrences(event, start, end):
                    found.append((span[0], render(event, request, occurrence=span)))
            elif event["_start"] < end and event["_end"] > start:
                found.append((event["_start"], render(event, request)))
        found.sort(key=lambda pair: pair[0])
        return JSONResponse(page(state, request, [item for _, item in found]))

    async def list_events(
        request: Request, account: MsAccount, mailbox: Mailbox, scoped: bool
    ) -> Response:
        cid = calendar_id(request, mailbox)
        tests = parse_filter(request.query_params.get("$filter") or "")
        events = sorted(
            (e for e in state.events(mailbox) if e["_folder"] == cid and all(t(e) for t in tests)),
            key=lambda e: e["createdDateTime"],
        )
        events = [with_join_url(mailbox, e, read=True) for e in events]
        return JSONResponse(page(state, request, [render(e, request) for e in events]))

    async def create_event(
        request: Request, account: MsAccount, mailbox: Mailbox, scoped: bool
    ) -> Response:
        cid = calendar_id(request, mailbox)
        body = _json_body(await request.body())
        txid = body.get("transactionId")
        if txid:
            existing = state.by_transaction(mailbox, cid, str(txid))
            if existing is not None:
                if existing["_digest"] != _digest(body):
                    raise GraphApiError(400, "ErrorDuplicateTransactionId")
                # An identical resend "to avoid redundant POST operations in case of client
                # retries": the event already made, nothing new.
                existing = with_join_url(mailbox, existing, read=False)
                return JSONResponse(
                    render(existing, request, zone=existing["_zone"]), status_code=201
                )
        event = build_event(body, account, cid)
        state.put_event(mailbox, event)
        if event["isOnlineMeeting"]:
            state.online_meeting_created(event["_id"])
            event = with_join_url(mailbox, event, read=False)
        return JSONResponse(render(event, request, zone=event["_zone"]), status_code=201)

    async def get_event(
        request: Request, account: MsAccount, mailbox: Mailbox, scoped: bool
    ) -> Response:
        event = with_join_url(mailbox, event_in(request, mailbox, scoped), read=True)
        return JSONResponse(render(event, request))

    async def update_event(
        request: Request, account: MsAccount, mailbox: Mailbox, scoped: bool
    ) -> Response:
        event = event_in(request, mailbox, scoped)
        body = _json_body(await request.body())
        zone = event["_zone"]
        if "start" in body:
            event["_start"], zone = read_time(body["start"], "start")
        if "end" in body:
            event["_end"], _ = read_time(body["end"], "end")
        if event["_end"] < event["_start"]:
            raise GraphApiError(
                400, "ErrorInvalidRequest", "The end time must be after the start time."
            )
        event["_zone"] = zone
        for key in ("subject", "body", "showAs", "attendees"):
            if key in body:
                event[key] = body[key]
        for prop in body.get("singleValueExtendedProperties") or ():
            event["_props"][str(prop["id"])] = str(prop["value"])
        event["lastModifiedDateTime"] = _now_text()
        event["changeKey"] = _change_key()
        state.put_event(mailbox, event)
        return JSONResponse(render(event, request, zone=zone))

    async def delete_event(
        request: Request, account: MsAccount, mailbox: Mailbox, scoped: bool
    ) -> Response:
        event = event_in(request, mailbox, scoped)
        # "If the event is a meeting, deleting the event on the organizer's calendar sends a
        # cancellation message to the meeting attendees." A deleted item moves to Deleted
        # Items (its default id changes); deleting it from there removes it for good.
        event["_folder"] = GONE if event["_folder"] == DELETED_ITEMS else DELETED_ITEMS
        state.put_event(mailbox, event)
        return Response(status_code=204)

    async def cancel_event(
        request: Request, account: MsAccount, mailbox: Mailbox, scoped: bool
    ) -> Response:
        event = event_in(request, mailbox, scoped)
        if event["_folder"] == DELETED_ITEMS:
            raise GraphApiError(404, "ErrorItemNotFound")
        if not event.get("isOrganizer", True):
            raise GraphApiError(
                400, "ErrorAccessDenied", "You need to be an organizer to cancel a meeting."
            )
        event["isCancelled"] = True
        # "The action moves the event to the Deleted Items folder."
        event["_folder"] = DELETED_ITEMS
        state.put_event(mailbox, event)
        return Response(status_code=202)

    routes: list[Route] = []

    def add(
        path: str, kind: str, needed: frozenset[str], handler: Handler, method: str, scoped: bool
    ) -> None:
        routes.append(Route(path, endpoint(kind, needed, handler, scoped), methods=[method]))

    add(
        "/v1.0/me/mailboxSettings",
        "graph.mailboxSettings",
        _SETTINGS,
        mailbox_settings,
        "GET",
        False,
    )
    for prefix in ("/v1.0/me/calendar", "/v1.0/me/calendars/{cid}"):
        add(prefix, "graph.calendar", _READ, calendar, "GET", True)
        add(f"{prefix}/calendarView", "graph.calendarView", _READ, calendar_view, "GET", True)
    for prefix in ("/v1.0/me", "/v1.0/me/calendar", "/v1.0/me/calendars/{cid}"):
        scoped = prefix != "/v1.0/me"
        events = f"{prefix}/events"
        add(events, "graph.events.list", _READ, list_events, "GET", scoped)
        add(events, "graph.events.create", _WRITE, create_event, "POST", scoped)
        add(f"{events}/{{eid}}", "graph.events.get", _READ, get_event, "GET", scoped)
        add(f"{events}/{{eid}}", "graph.events.update", _WRITE, update_event, "PATCH", scoped)
        add(f"{events}/{{eid}}", "graph.events.delete", _WRITE, delete_event, "DELETE", scoped)
        add(f"{events}/{{eid}}/cancel", "graph.events.cancel", _WRITE, cancel_event, "POST", scoped)
    return routes


def seed_event(
    state: MicrosoftState, email: str, body: dict[str, Any], calendar_id: str | None = None
) -> dict[str, Any]:
    """Store an event as if the owner had made it in Outlook (control hook, demo mode):
    no token, no counters. Returns it as Graph shows it (UTC, immutable id)."""
    account = state.ensure_account(email)
    mailbox = state.mailbox(email)
    assert mailbox is not None
    cid = calendar_id or mailbox.default_calendar
    if cid not in mailbox.calendars:
        raise GraphApiError(404, "ErrorItemNotFound")
    event = build_event(body, account, cid)
    state.put_event(mailbox, event)
    return stored_json(event)


def stored_json(event: dict[str, Any]) -> dict[str, Any]:
    """An event as the control hooks show it: every public field, times in UTC, the immutable
    id, where it is (`folder`) and its extended properties."""
    public = {k: v for k, v in event.items() if not k.startswith("_")}
    return {
        **public,
        "id": event["_id"],
        "folder": event["_folder"],
        "start": write_time(event["_start"], None),
        "end": write_time(event["_end"], None),
        "singleValueExtendedProperties": [
            {"id": k, "value": v} for k, v in event.get("_props", {}).items()
        ],
    }
