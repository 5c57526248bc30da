"""Event validation, server-filled fields, list filtering and busy-time computation.

Recurrence is deliberately not modelled: a `recurrence` field is stored and echoed back, but
no instances are expanded — `singleEvents=true` lists and free/busy see only the master event's
own start/end. The project only books and reads single events.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from datetime import UTC, date, datetime
from typing import Any

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


def stamp(event: dict[str, Any]) -> None:
    now = datetime.now(UTC)
    event["updated"] = format_z(now, millis=True)
    digest = hashlib.sha1(repr(sorted(event.items())).encode(), usedforsecurity=False)
    event["etag"] = '"' + str(int(digest.hexdigest()[:15], 16)) + '"'


def _add_conference(event: dict[str, Any]) -> None:
    request = (event.get("conferenceData") or {}).get("createRequest")
    if not request:
        return
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
        "conferenceSolution": {
            "key": {"type": "hangoutsMeet"},
            "name": "Google Meet",
            "iconUri": "https://fonts.gstatic.com/s/i/productlogos/meet_2020q4/v6/web-512dp/logo_meet_2020q4_color_2x_web_512dp.png",
        },
        "conferenceId": code,
    }


def build_new_event(
    body: dict[str, Any],
    calendar: Calendar,
    creator_email: str,
    *,
    base_url: str,
    conference_version: int,
) -> dict[str, Any]:
    """A complete stored event from an insert body (id checked for syntax, not uniqueness)."""
    if not isinstance(body, dict):
        raise ApiError(400, "parseError", "Parse Error")
    event = {k: v for k, v in body.items() if k not in _SERVER_FIELDS}
    event_id = validate_event_id(body["id"]) if body.get("id") else new_event_id()
    _normalize_times(event, calendar)
    if conference_version >= 1:
        _add_conference(event)
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
    _normalize_times(event, calendar)
    if conference_version >= 1 and "conferenceData" in body:
        _add_conference(event)
    elif "conferenceData" in body:
        event["conferenceData"] = existing.get("conferenceData")
        if event["conferenceData"] is None:
            event.pop("conferenceData")
    if event["start"] != existing.get("start") or event["end"] != existing.get("end"):
        event["sequence"] = int(existing.get("sequence", 0)) + 1
    stamp(event)
    return event


def is_busy(event: dict[str, Any]) -> bool:
    return event.get("status") != "cancelled" and event.get("transparency") != "transparent"


def busy_intervals(
    events: list[dict[str, Any]], calendar_tz: str, time_min: datetime, time_max: datetime
) -> list[dict[str, str]]:
    clipped: list[tuple[datetime, datetime]] = []
    for event in events:
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
    show_deleted: bool,
    private_props: list[str],
    shared_props: list[str],
    text: str | None,
) -> list[dict[str, Any]]:
    """Google's list filters: timeMin bounds the END, timeMax the START, both exclusive."""
    out = []
    for event in events:
        if event.get("status") == "cancelled" and not show_deleted:
            continue
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
