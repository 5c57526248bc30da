"""RFC 3339 parsing/formatting and the instants an event occupies."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def parse_rfc3339(value: str) -> datetime:
    """Parse a timestamp that must carry an offset (Google rejects naive query bounds)."""
    parsed = datetime.fromisoformat(value.strip())
    if parsed.tzinfo is None:
        raise ValueError(f"missing UTC offset: {value!r}")
    return parsed


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


def format_z(moment: datetime, *, millis: bool = False) -> str:
    utc = moment.astimezone(UTC)
    if millis:
        return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
    return utc.strftime("%Y-%m-%dT%H:%M:%SZ")


def format_local(moment: datetime, tz: ZoneInfo) -> str:
    # Google writes a zero offset as "Z".
    text = moment.astimezone(tz).replace(microsecond=0).isoformat()
    return text.removesuffix("+00:00") + "Z" if text.endswith("+00:00") else text


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz)


def event_bounds(event: dict[str, Any], calendar_tz: str) -> tuple[datetime, datetime]:
    """Start and end instants of a stored (already normalised) event.

    All-day events span local midnight to local midnight in the calendar's time zone; the end
    date is exclusive, as in Google's model.
    """
    start, end = event["start"], event["end"]
    if "date" in start:
        tz = zone(calendar_tz)
        return (
            local_midnight(date.fromisoformat(start["date"]), tz),
            local_midnight(date.fromisoformat(end["date"]), tz),
        )
    return parse_rfc3339(start["dateTime"]), parse_rfc3339(end["dateTime"])


def merge_intervals(
    intervals: list[tuple[datetime, datetime]],
) -> list[tuple[datetime, datetime]]:
    merged: list[tuple[datetime, datetime]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
