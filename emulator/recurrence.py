"""Recurring events as Google models them: a parent carrying RFC 5545 lines, and its instances.

References (see /work/research/google-reference.md §1):
- `Event.recurrence`: "List of RRULE, EXRULE, RDATE and EXDATE lines for a recurring event, as
  specified in RFC5545. Note that DTSTART and DTEND lines are not allowed in this field"; the
  parent's `start`/`end` are the first instance's, and `start.timeZone` "specifies the time zone
  in which the recurrence is expanded" (Calendar v3 discovery document, Event schema).
- Exceptions are separate stored events carrying `recurringEventId` and `originalStartTime`:
  modified ones with their own start/end, cancelled ones with `status: "cancelled"` (the
  recurring-events guide; deleting one occurrence through the API makes a cancelled exception,
  not an EXDATE line).
- Instance ids look like `<parentId>_<YYYYMMDDTHHMMSSZ>` (the original start in UTC) for timed
  series and `<parentId>_<YYYYMMDD>` for all-day ones. Google does not document this format and
  says ids "must be treated as opaque"; the emulator needs *some* id, the app never builds one.

Expansion uses python-dateutil's RFC 5545 `rrulestr` (RRULE, RDATE, EXRULE, EXDATE), iterating
wall-clock times in the series' zone, so a 10:00 series stays at 10:00 across a DST change.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from dateutil.rrule import rruleset, rrulestr

from vapi_calendar.emulator.errors import ApiError
from vapi_calendar.emulator.times import event_bounds, format_local, parse_rfc3339, zone

# Google's limit on how many instances it expands is undocumented; the emulator stops here so
# an unbounded series (no COUNT/UNTIL) queried without timeMax still answers.
MAX_INSTANCES = 1000
_INSTANCE_SUFFIX = re.compile(r"^(\d{8})(?:[tT](\d{6})[zZ])?$")

Start = datetime | date  # aware local datetime (timed series) or date (all-day series)


def is_series(event: dict[str, Any]) -> bool:
    """A recurring parent (an exception is a single event tied to one, never a parent)."""
    return bool(event.get("recurrence")) and not event.get("recurringEventId")


def _all_day(event: dict[str, Any]) -> bool:
    return "date" in event["start"]


def series_zone(event: dict[str, Any], calendar_tz: str) -> ZoneInfo:
    return zone(event["start"].get("timeZone") or calendar_tz)


def validate_series(event: dict[str, Any], calendar_tz: str) -> None:
    """Refuse what Google refuses: a timed series without a zone, or lines dateutil cannot read."""
    lines = event.get("recurrence")
    if not isinstance(lines, list) or not all(isinstance(line, str) for line in lines):
        raise ApiError(400, "invalid", "Invalid recurrence rule.")
    if any(line.upper().startswith(("DTSTART", "DTEND")) for line in lines):
        raise ApiError(400, "invalid", "Invalid recurrence rule.")
    if not _all_day(event) and not event["start"].get("timeZone"):
        # "For recurring events this field is required" (EventDateTime.timeZone).
        raise ApiError(400, "required", "Missing time zone definition for start time.")
    try:
        _rules(event, calendar_tz)
    except (ValueError, TypeError) as exc:
        raise ApiError(400, "invalid", "Invalid recurrence rule.") from exc


def _first_start(event: dict[str, Any], calendar_tz: str) -> Start:
    if _all_day(event):
        return date.fromisoformat(event["start"]["date"])
    return parse_rfc3339(event["start"]["dateTime"]).astimezone(series_zone(event, calendar_tz))


def _length(event: dict[str, Any], calendar_tz: str) -> timedelta:
    """The first instance's length, in wall-clock terms (days for an all-day series)."""
    if _all_day(event):
        return date.fromisoformat(event["end"]["date"]) - date.fromisoformat(event["start"]["date"])
    tz = series_zone(event, calendar_tz)
    start = parse_rfc3339(event["start"]["dateTime"]).astimezone(tz).replace(tzinfo=None)
    end = parse_rfc3339(event["end"]["dateTime"]).astimezone(tz).replace(tzinfo=None)
    return end - start


def _rules(event: dict[str, Any], calendar_tz: str) -> rruleset:
    first = _first_start(event, calendar_tz)
    # All-day series iterate naive midnights (EXDATE;VALUE=DATE lines parse as naive too).
    dtstart = first if isinstance(first, datetime) else datetime(first.year, first.month, first.day)
    text = "\n".join(event["recurrence"])
    rules = rrulestr(text, dtstart=dtstart, forceset=True, tzids=ZoneInfo)
    assert isinstance(rules, rruleset)
    return rules


def _as_start(moment: datetime, all_day: bool) -> Start:
    return moment.date() if all_day else moment


def occurrences(
    event: dict[str, Any], calendar_tz: str, after: datetime | None, before: datetime | None
) -> list[Start]:
    """Original starts of the series' instances starting in [after, before), at most
    `MAX_INSTANCES` (EXDATE and EXRULE already applied; exceptions are the caller's)."""
    rules, all_day = _rules(event, calendar_tz), _all_day(event)
    tz = series_zone(event, calendar_tz)

    def bound(moment: datetime) -> datetime:
        local = moment.astimezone(tz)
        return local.replace(tzinfo=None) if all_day else local

    found: list[Start] = []
    for moment in rules:
        if before is not None and moment >= bound(before):
            break
        if after is not None and moment < bound(after):
            continue
        found.append(_as_start(moment, all_day))
        if len(found) >= MAX_INSTANCES:
            break
    return found


def instance_suffix(original: Start) -> str:
    if isinstance(original, datetime):
        return original.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return original.strftime("%Y%m%d")


def instance_id(parent_id: str, original: Start) -> str:
    return f"{parent_id}_{instance_suffix(original)}"


def original_start_json(original: Start, tz_name: str | None) -> dict[str, Any]:
    if isinstance(original, datetime):
        assert isinstance(original.tzinfo, ZoneInfo)
        value: dict[str, Any] = {"dateTime": format_local(original, original.tzinfo)}
        if tz_name:
            value["timeZone"] = tz_name
        return value
    return {"date": original.isoformat()}


def instance(parent: dict[str, Any], original: Start, calendar_tz: str) -> dict[str, Any]:
    """The instance of `parent` that starts (originally) at `original`, as Google lists it."""
    length = _length(parent, calendar_tz)
    tz_name = parent["start"].get("timeZone")
    made = {k: v for k, v in parent.items() if k != "recurrence"}
    made["id"] = instance_id(parent["id"], original)
    made["recurringEventId"] = parent["id"]
    made["originalStartTime"] = original_start_json(original, tz_name)
    if isinstance(original, datetime):
        tz = original.tzinfo
        assert isinstance(tz, ZoneInfo)
        end = (original.replace(tzinfo=None) + length).replace(tzinfo=tz)
        made["start"] = {**parent["start"], "dateTime": format_local(original, tz)}
        made["end"] = {**parent["end"], "dateTime": format_local(end, tz)}
    else:
        made["start"] = {**parent["start"], "date": original.isoformat()}
        made["end"] = {**parent["end"], "date": (original + length).isoformat()}
    return made


def parse_instance_id(event_id: str) -> tuple[str, str] | None:
    """(parent id, suffix) when `event_id` has the shape of an instance id."""
    parent, sep, suffix = event_id.rpartition("_")
    if not sep or not parent or not _INSTANCE_SUFFIX.match(suffix):
        return None
    return parent, suffix.upper()


def find_instance(parent: dict[str, Any], suffix: str, calendar_tz: str) -> dict[str, Any] | None:
    """The parent's instance whose id ends in `suffix`, if the series has that occurrence."""
    match = _INSTANCE_SUFFIX.match(suffix)
    if match is None or not is_series(parent):
        return None
    day, clock = match.groups()
    try:
        if clock is None:
            moment = datetime.strptime(day, "%Y%m%d").replace(tzinfo=UTC)
            after, before = moment - timedelta(days=1), moment + timedelta(days=2)
        else:
            moment = datetime.strptime(day + clock, "%Y%m%d%H%M%S").replace(tzinfo=UTC)
            after, before = moment, moment + timedelta(seconds=1)
    except ValueError:
        return None
    for original in occurrences(parent, calendar_tz, after, before):
        made = instance(parent, original, calendar_tz)
        if made["id"].upper() == f"{parent['id']}_{suffix}".upper():
            return made
    return None


def expand(
    events: list[dict[str, Any]],
    calendar_tz: str,
    time_min: datetime | None,
    time_max: datetime | None,
) -> list[dict[str, Any]]:
    """The calendar as `singleEvents=true` shows it: single events and exceptions as stored,
    every series replaced by its instances that may overlap [time_min, time_max).

    A stored exception (same instance id) takes the place of the instance it modifies or
    cancels; an instance of a cancelled series is cancelled too.
    """
    stored = {e["id"] for e in events}
    out: list[dict[str, Any]] = []
    for event in events:
        if not is_series(event):
            out.append(event)
            continue
        reach = _length(event, calendar_tz) + timedelta(days=1)  # instances that started earlier
        after = time_min - reach if time_min is not None else None
        for original in occurrences(event, calendar_tz, after, time_max):
            made = instance(event, original, calendar_tz)
            if made["id"] in stored:
                continue  # the exception is listed in its place
            if event.get("status") == "cancelled":
                made["status"] = "cancelled"
            out.append(made)
    return out


def series_overlaps(
    event: dict[str, Any],
    calendar_tz: str,
    time_min: datetime | None,
    time_max: datetime | None,
) -> bool:
    """Whether any instance of the series overlaps the window (for `singleEvents=false`)."""
    for made in expand([event], calendar_tz, time_min, time_max):
        start, end = event_bounds(made, calendar_tz)
        if (time_min is None or end > time_min) and (time_max is None or start < time_max):
            return True
    return False
