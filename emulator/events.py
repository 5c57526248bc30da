"""Event validation, server-filled fields, list filtering and busy-time computation.

Recurring series are expanded by `recurrence` (RRULE/RDATE/EXRULE/EXDATE, with modified and
cancelled exceptions) wherever Google expands them: `singleEvents=true` listings and freeBusy.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from datetime import UTC, date, datetime
from typing import Any

from vapi_calendar.emulator import recurrence
from vapi_calendar.emulator.errors import ApiError
from vapi_calendar.emulator.state import Calendar
from vapi_calendar.emulator.times import (
    event_bounds,
    format_local,
    format_z,
    merge_intervals,
    parse_rfc3339,
    zone,
)

_EVENT_ID = re.compile(r"^[a-v0-9]{5,1024}$")
# Fields the server owns; a client body cannot overwrite them on update/patch.
_SERVER_FIELDS = ("id", "kind", "created", "iCalUID", "htmlLink", "organizer", "creator")
_EVENT_TYPES = frozenset(
    {"default", "birthday", "focusTime", "fromGmail", "outOfOffice", "workingLocation"}
)
# Event types whose transparency Google fixes, which is what makes them busy or not:
# focusTime / outOfOffice "Set the transparency field to 'opaque'" and cannot be all-day;
# workingLocation "Set the transparency field to 'transparent'"
# (developers.google.com/workspace/calendar/api/guides/calendar-status); birthday:
# "transparency field value must be 'transparent'" (.../guides/event-types). Google's exact
# error texts for breaking these rules are not documented; the emulator's are its own.
_FIXED_TRANSPARENCY = {
    "focusTime": "opaque",
    "outOfOffice": "opaque",
    "workingLocation": "transparent",
    "birthday": "transparent",
}
_TIMED_ONLY = frozenset({"focusTime", "outOfOffice"})


def new_event_id() -> str:
    alphabet = "abcdefghijklmnopqrstuv0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(26))


def validate_event_id(event_id: Any) -> str:
    if not isinstance(event_id, str) or not _EVENT_ID.match(event_id):
        raise ApiError(400, "invalid", "Invalid resource id value.")
    return event_id


def _normalize_time(
    value: Any, which: str, calendar: Calendar
) -> tuple[dict[str, Any], datetime | date]:
    if not isinstance(value, dict) or not ({"date", "dateTime"} & value.keys()):
        raise ApiError(400, "required", f"Missing {which} time.")
    out = dict(value)
    tz_name = value.get("timeZone")
    try:
        tz = zone(tz_name) if tz_name else None
    except ValueError as exc:
        raise ApiError(400, "invalid", f"Invalid time zone definition for {which} time.") from exc
    if value.get("date"):
        try:
            day = date.fromisoformat(value["date"])
        except (TypeError, ValueError) as exc:
            raise ApiError(400, "invalid", f"Invalid {which} time.") from exc
        out.pop("dateTime", None)
        return out, day
    raw = value["dateTime"]
    try:
        moment = datetime.fromisoformat(str(raw))
    except ValueError as exc:
        raise ApiError(400, "invalid", f"Invalid {which} time.") from exc
    if moment.tzinfo is None:
        if tz is None:
            raise ApiError(400, "required", f"Missing time zone definition for {which} time.")
        moment = moment.replace(tzinfo=tz)
    # Google echoes dateTime in the event's zone, else the calendar's, always with an offset.
    out["dateTime"] = format_local(moment, tz or zone(calendar.timezone))
    out.pop("date", None)
    return out, moment


def _normalize_times(event: dict[str, Any], calendar: Calendar) -> None:
    start, start_at = _normalize_time(event.get("start"), "start", calendar)
    end, end_at = _normalize_time(event.get("end"), "end", calendar)
    if type(start_at) is not type(end_at):
        raise ApiError(
            400, "invalid", "Start and end times must either both be date or both be dateTime."
        )
    if end_at <= start_at:
        raise ApiError(400, "timeRangeEmpty", "The specified time range is empty.")
    event["start"], event["end"] = start, end


def _check_event_type(event: dict[str, Any]) -> None:
    kind = event.get("eventType") or "default"
    if kind not in _EVENT_TYPES:
        raise ApiError(400, "invalid", f"Invalid value for: eventType: {kind}")
    if kind == "fromGmail":
        # "This type of event cannot be created" (Event.eventType, discovery document).
        raise ApiError(400, "invalid", "Events of type fromGmail cannot be created.")
    required = _FIXED_TRANSPARENCY.get(kind)
    if required is not None:
        given = event.setdefault("transparency", required)
        if given != required:
            raise ApiError(400, "invalid", f"{kind} events must have transparency {required}.")
    if kind in _TIMED_ONLY and "date" in event["start"]:
        raise ApiError(400, "invalid", f"{kind} events cannot be all-day events.")


def _mark_attendees(event: dict[str, Any], calendar: Calendar) -> None:
    """`self` is read-only: Google sets it on the attendee that is this calendar; a new guest's
    `responseStatus` starts as `needsAction` (EventAttendee, discovery document)."""
    attendees = event.get("attendees")
    if not isinstance(attendees, list):
        return
    marked = []
    for attendee in attendees:
        if not isinstance(attendee, dict):
            raise ApiError(400, "invalid", "Invalid attendee.")
        entry = {k: v for k, v in attendee.items() if k != "self"}
        entry.setdefault("responseStatus", "needsAction")
        if str(entry.get("email", "")).lower() == calendar.id.lower():
            entry["self"] = True
        marked.append(entry)
    event["attendees"] = marked


def _check(event: dict[str, Any], calendar: Calendar) -> None:
    """Everything Google validates on a create or a full write, in its order."""
    _normalize_times(event, calendar)
    _check_event_type(event)
    _mark_attendees(event, calendar)
    if recurrence.is_series(event):
        recurrence.validate_series(event, calendar.timezone)


def stamp(event: dict[str, Any]) -> None:
    now = datetime.now(UTC)
    event["updated"] = format_z(now, millis=True)
    digest = hashlib.sha1(repr(sorted(event.items())).encode(), usedforsecurity=False)
    event["etag"] = '"' + str(int(digest.hexdigest()[:15], 16)) + '"'


def add_conference(event: dict[str, Any], *, pending: bool = False) -> None:
    """Act on `conferenceData.createRequest`. "The data is generated asynchronously. To see
    whether the data is present check the status field" (CreateConferenceRequest): a `pending`
    request has no entry points and no `hangoutLink` yet; `complete_conference` fills them in."""
    request = (event.get("conferenceData") or {}).get("createRequest")
    if not request:
        return
    if pending:
        event.pop("hangoutLink", None)
        event["conferenceData"] = {
            "createRequest": {**request, "status": {"statusCode": "pending"}},
            "conferenceSolution": _MEET_SOLUTION,
        }
        return
    complete_conference(event)


_MEET_SOLUTION = {
    "key": {"type": "hangoutsMeet"},
    "name": "Google Meet",
    "iconUri": "https://fonts.gstatic.com/s/i/productlogos/meet_2020q4/v6/web-512dp/logo_meet_2020q4_color_2x_web_512dp.png",
}


def complete_conference(event: dict[str, Any]) -> None:
    """The conference exists: entry points, the meeting code and `hangoutLink`."""
    request = (event.get("conferenceData") or {}).get("createRequest") or {}
    code = "-".join(
        "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(n)) for n in (3, 4, 3)
    )
    uri = f"https://meet.google.com/{code}"
    event["hangoutLink"] = uri
    event["conferenceData"] = {
        "createRequest": {**request, "status": {"statusCode": "success"}},
        "entryPoints": [
            {"entryPointType": "video", "uri": uri, "label": uri.removeprefix("https://")}
        ],
        "conferenceSolution": _MEET_SOLUTION,
        "conferenceId": code,
    }


def conference_pending(event: dict[str, Any]) -> bool:
    status = ((event.get("conferenceData") or {}).get("createRequest") or {}).get("status") or {}
    return status.get("statusCode") == "pending"


def build_new_event(
    body: dict[str, Any],
    calendar: Calendar,
    creator_email: str,
    *,
    base_url: str,
    conference_version: int,
    meet_pending: bool = False,
) -> dict[str, Any]:
    """A complete stored event from an insert body (id checked for syntax, not uniqueness)."""
    if not isinstance(body, dict):
        raise ApiError(400, "parseError", "Parse Error")
    event = {k: v for k, v in body.items() if k not in _SERVER_FIELDS}
    event_id = validate_event_id(body["id"]) if body.get("id") else new_event_id()
    _check(event, calendar)
    if conference_version >= 1:
        add_conference(event, pending=meet_pending)
    else:
        # Without conferenceDataVersion=1 Google ignores conference data in the body.
        event.pop("conferenceData", None)
    eid = base64.urlsafe_b64encode(f"{event_id} {calendar.id}".encode()).decode().rstrip("=")
    organizer: dict[str, Any] = {"email": calendar.id, "self": True}
    if calendar.id != calendar.owner:
        organizer["displayName"] = calendar.summary
    event.update(
        {
            "kind": "calendar#event",
            "id": event_id,
            "status": body.get("status") or "confirmed",
            "htmlLink": f"{base_url}/calendar/event?eid={eid}",
            "created": format_z(datetime.now(UTC), millis=True),
            "iCalUID": f"{event_id}@google.com",
            "sequence": 0,
            "organizer": organizer,
            "creator": {"email": creator_email, "self": True},
            "reminders": body.get("reminders") or {"useDefault": True},
            "eventType": body.get("eventType") or "default",
        }
    )
    stamp(event)
    return event


def apply_update(
    existing: dict[str, Any],
    body: dict[str, Any],
    calendar: Calendar,
    *,
    replace: bool,
    conference_version: int,
    meet_pending: bool = False,
) -> dict[str, Any]:
    """PUT (`replace=True`) or PATCH (top-level merge) of a stored event."""
    if not isinstance(body, dict):
        raise ApiError(400, "parseError", "Parse Error")
    client_fields = {k: v for k, v in body.items() if k not in _SERVER_FIELDS}
    if replace:
        kept = {k: existing[k] for k in (*_SERVER_FIELDS, "sequence") if k in existing}
        event = {**kept, **client_fields}
        event.setdefault("status", "confirmed")
    else:
        event = {**existing, **client_fields}
    _check(event, calendar)
    if conference_version >= 1 and "conferenceData" in body:
        add_conference(event, pending=meet_pending)
    elif "conferenceData" in body:
        event["conferenceData"] = existing.get("conferenceData")
        if event["conferenceData"] is None:
            event.pop("conferenceData")
    if event["start"] != existing.get("start") or event["end"] != existing.get("end"):
        event["sequence"] = int(existing.get("sequence", 0)) + 1
    stamp(event)
    return event


def is_busy(event: dict[str, Any]) -> bool:
    """Blocks time in freeBusy: not cancelled, opaque (`transparency` "opaque" - Default value.
    The event does block time on the calendar"), and not declined by this calendar's owner.

    Declined invitations: Google's reference does not say whether freeBusy leaves them out
    (google-reference.md §2, unverified); the Calendar UI shows them as not blocking time, and
    the emulator follows the UI.
    """
    if event.get("status") == "cancelled" or event.get("transparency") == "transparent":
        return False
    return not any(
        attendee.get("self") and attendee.get("responseStatus") == "declined"
        for attendee in event.get("attendees") or ()
    )


def busy_intervals(
    events: list[dict[str, Any]], calendar_tz: str, time_min: datetime, time_max: datetime
) -> list[dict[str, str]]:
    """freeBusy of one calendar: series expanded (freeBusy has no singleEvents switch; it
    answers for occurrences), all-day events from local midnight to local midnight in the
    calendar's zone (`times.event_bounds`), overlapping blocks merged."""
    clipped: list[tuple[datetime, datetime]] = []
    for event in recurrence.expand(events, calendar_tz, time_min, time_max):
        if not is_busy(event):
            continue
        start, end = event_bounds(event, calendar_tz)
        start, end = max(start, time_min), min(end, time_max)
        if start < end:
            clipped.append((start, end))
    return [{"start": format_z(s), "end": format_z(e)} for s, e in merge_intervals(clipped)]


def _matches_text(event: dict[str, Any], needle: str) -> bool:
    haystack = [event.get("summary"), event.get("description"), event.get("location")]
    for attendee in event.get("attendees") or []:
        haystack += [attendee.get("email"), attendee.get("displayName")]
    return any(needle in str(h).lower() for h in haystack if h)


def _matches_properties(event: dict[str, Any], scope: str, filters: list[str]) -> bool:
    props = (event.get("extendedProperties") or {}).get(scope) or {}
    for item in filters:
        key, sep, value = item.partition("=")
        if not sep:
            raise ApiError(400, "invalid", f"Invalid {scope}ExtendedProperty value: {item}")
        if props.get(key) != value:
            return False
    return True


def filter_events(
    events: list[dict[str, Any]],
    calendar_tz: str,
    *,
    time_min: datetime | None,
    time_max: datetime | None,
    single_events: bool,
    show_deleted: bool,
    private_props: list[str],
    shared_props: list[str],
    text: str | None,
) -> list[dict[str, Any]]:
    """Google's list filters: timeMin bounds the END, timeMax the START, both exclusive.

    `singleEvents=true` lists instances instead of series. Without it, series are listed as
    such (when an occurrence overlaps the window) together with their exceptions, and
    "Cancelled instances of recurring events (but not the underlying recurring event) will
    still be included if showDeleted and singleEvents are both False" (`showDeleted`).
    """
    if single_events:
        events = recurrence.expand(events, calendar_tz, time_min, time_max)
    out = []
    for event in events:
        cancelled_exception = not single_events and bool(event.get("recurringEventId"))
        if event.get("status") == "cancelled" and not (show_deleted or cancelled_exception):
            continue
        if recurrence.is_series(event):
            if not recurrence.series_overlaps(event, calendar_tz, time_min, time_max):
                continue
        else:
            start, end = event_bounds(event, calendar_tz)
            if time_min is not None and end <= time_min:
                continue
            if time_max is not None and start >= time_max:
                continue
        if not _matches_properties(event, "private", private_props):
            continue
        if not _matches_properties(event, "shared", shared_props):
            continue
        if text and not _matches_text(event, text.lower()):
            continue
        out.append(event)
    return out


def start_sort_key(calendar_tz: str) -> Any:
    def key(event: dict[str, Any]) -> datetime:
        return event_bounds(event, calendar_tz)[0]

    return key


def parse_bound(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_rfc3339(value)
    except ValueError as exc:
        raise ApiError(400, "badRequest", "Bad Request", extra={"location": name}) from exc
