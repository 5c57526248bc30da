"""Saying times to a caller: fixed English words, the caller's wall clock, the zone named.

Pure functions, no I/O. Every datetime spoken is first converted to the calendar's zone, so the
caller always hears local wall time, with the zone abbreviation so a wrong guess is heard.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

__all__ = [
    "clock",
    "date_words",
    "duration_words",
    "or_list",
    "spoken",
    "spoken_choices",
    "spoken_range",
]

# Fixed English names: strftime's %A/%B follow the process locale.
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def clock(dt: datetime) -> str:
    """12-hour wall clock, e.g. "9:05 AM"; no strftime, so no locale or platform quirks."""
    hour = dt.hour % 12 or 12
    return f"{hour}:{dt.minute:02d} {'AM' if dt.hour < 12 else 'PM'}"


def date_words(day: date, *, with_year: bool) -> str:
    words = f"{_WEEKDAYS[day.weekday()]}, {_MONTHS[day.month - 1]} {day.day}"
    return f"{words}, {day.year}" if with_year else words


def _zone_words(local: datetime) -> str:
    """The zone abbreviation, or "UTC+3"-style words where tzdata only has "+03"."""
    name = local.tzname() or ""
    if not name or name[0] not in "+-":
        return name
    digits = name[1:]
    hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
    if hours == minutes == 0:
        return "UTC"
    return f"UTC{name[0]}{hours}" + (f":{minutes:02d}" if minutes else "")


def _needs_year(local: datetime, tz: ZoneInfo, now: datetime) -> bool:
    return local.year != now.astimezone(tz).year


def spoken(dt: datetime, tz: ZoneInfo, *, now: datetime) -> str:
    """Say a time, e.g. "Tuesday, March 11 at 10:00 AM EDT"; the year only if not this year."""
    local = dt.astimezone(tz)
    day = date_words(local.date(), with_year=_needs_year(local, tz, now))
    return f"{day} at {clock(local)} {_zone_words(local)}"


def spoken_range(start: datetime, end: datetime, tz: ZoneInfo, *, now: datetime) -> str:
    """Say a range: "Tuesday, March 11 from 10:00 to 10:30 AM EDT"; across days, two full forms."""
    first, last = start.astimezone(tz), end.astimezone(tz)
    if first.date() != last.date():
        return f"{spoken(first, tz, now=now)} to {spoken(last, tz, now=now)}"
    day = date_words(first.date(), with_year=_needs_year(first, tz, now))
    first_zone, last_zone = _zone_words(first), _zone_words(last)
    if first_zone != last_zone:
        # Only on a fall-back night, e.g. "from 1:30 AM EDT to 1:15 AM EST".
        return f"{day} from {clock(first)} {first_zone} to {clock(last)} {last_zone}"
    from_clock, to_clock = clock(first), clock(last)
    if from_clock[-2:] == to_clock[-2:]:
        from_clock = from_clock[:-3]
    return f"{day} from {from_clock} to {to_clock} {last_zone}"


def spoken_choices(starts: list[datetime], tz: ZoneInfo, now: datetime) -> str:
    """'Tuesday, March 11 at 9:00 AM, 9:30 AM or 11:00 AM EDT', naming each day once."""
    groups: list[tuple[str, list[str], str]] = []  # (day, clock times, zone)
    for start in starts:
        day, _, at = spoken(start, tz, now=now).partition(" at ")
        time_of_day, _, zone = at.rpartition(" ")
        if groups and groups[-1][0] == day and groups[-1][2] == zone:
            groups[-1][1].append(time_of_day)
        else:
            groups.append((day, [time_of_day], zone))
    phrases = [f"{day} at {or_list(times)} {zone}" for day, times, zone in groups]
    return or_list(phrases, separator="; ")


def or_list(items: list[str], separator: str = ", ") -> str:
    if len(items) <= 1:
        return "".join(items)
    return separator.join(items[:-1]) + " or " + items[-1]


def duration_words(total_minutes: int) -> str:
    """'45 minutes', '1 hour', '90 minutes', '2 days': how a person says a notice period."""
    if total_minutes % (24 * 60) == 0 and total_minutes >= 24 * 60:
        days = total_minutes // (24 * 60)
        return f"{days} day{'s' if days > 1 else ''}"
    if total_minutes % 60 == 0 and total_minutes >= 60:
        hours = total_minutes // 60
        return f"{hours} hour{'s' if hours > 1 else ''}"
    return f"{total_minutes} minutes"
