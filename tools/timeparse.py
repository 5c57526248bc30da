"""Reading the times the assistant sends. Pure functions, no I/O; every datetime returned is aware.

Saying times back to the caller lives in `vapi_calendar.tools.spoken`.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

from vapi_calendar.tools.errors import InvalidArguments
from vapi_calendar.tools.spoken import clock, date_words

__all__ = ["is_region_zone", "parse_datetime", "parse_timezone", "to_iso"]

_MAX_ECHO = 40
# The years a date may name; anything else is read as a mistake.
YEARS = (1970, 2999)

_ISO = re.compile(
    r"""
    (?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})
    (?:
        [T\ ]
        (?P<hour>\d{1,2}):(?P<minute>\d{2})
        (?::(?P<second>\d{2})(?:[.,](?P<fraction>\d{1,9}))?)?
        \ ?(?P<offset>Z|[+-]\d{2}(?::?\d{2})?)?
    )?
    """,
    re.VERBOSE | re.IGNORECASE,
)


def _echo(text: str) -> str:
    """Caller-supplied text made safe to quote in one spoken sentence."""
    text = " ".join(text.split())
    return text if len(text) <= _MAX_ECHO else text[: _MAX_ECHO - 1] + "…"


@cache
def _zones_by_lowercase() -> dict[str, str]:
    return {key.lower(): key for key in available_timezones()}


def is_region_zone(name: str) -> bool:
    """An IANA zone named after a place ("America/New_York", exactly so spelled) or UTC.

    Refused: legacy abbreviations ("EST", "CET", "EST5EDT": fixed offsets or US-only rules, so
    "EST" sent in July books an hour off), fixed offsets ("Etc/GMT+5", "GMT"), and tzdata's
    artefacts ("Factory", "localtime", "posixrules"). Region names, including IANA's backward
    links such as "US/Eastern", follow their place's daylight-saving rules.
    """
    if name in ("UTC", "Etc/UTC"):
        return True
    region = name.split("/", 1)[0]
    if "/" not in name or region in ("Etc", "posix", "right", "SystemV"):
        return False
    return name in _zones()


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def load_time_zones() -> None:
    """Read tzdata's list of zones now, rather than in the first call that names a zone: it
    walks the tzdata tree and reads every file's header (tens of milliseconds)."""
    _zones()
    _zones_by_lowercase()


def parse_timezone(name: str | None, default: ZoneInfo) -> ZoneInfo:
    """An IANA zone such as "Europe/Berlin"; missing or blank means `default`.

    Matching is case-insensitive because the assistant sometimes lowercases names.
    """
    if name is None or (isinstance(name, str) and not name.strip()):
        return default
    if not isinstance(name, str):
        raise InvalidArguments(f"I don't recognise the time zone '{_echo(str(name))}'.")
    key = name.strip()
    canonical = key if key in _zones() else _zones_by_lowercase().get(key.lower())
    if canonical is None:
        raise InvalidArguments(f"I don't recognise the time zone '{_echo(key)}'.")
    if not is_region_zone(canonical):
        raise InvalidArguments(
            "Please give the time zone as a region name such as America/New_York, "
            f"not '{_echo(key)}'."
        )
    return ZoneInfo(canonical)


def parse_datetime(
    value: str, tz: ZoneInfo, *, field: str = "startDateTime", allow_date: bool = False
) -> datetime:
    """Read an ISO 8601 date-time from the assistant; the result is aware and expressed in `tz`.

    - No offset ("2031-03-11T10:00:00", "2031-03-11 10:00", seconds and fractions optional)
      is wall time in `tz`. This is what the assistant should send: the caller speaks
      local time, so the assistant should pass it on without an offset.
    - With an offset ("...-05:00") or "Z" the value is that exact instant, with literal
      ISO semantics ("Z" is UTC). A model that wrongly appends "Z" to a local time gets a
      different instant, but every result is spoken back in local time, so the caller
      hears the shifted time and can correct it; silently reinterpreting "Z" would hide
      the mistake instead.
    - A date alone is refused (a booking needs a time) unless `allow_date`, then it means
      the start of that day in `tz`.
    - A wall time skipped by a clock change (02:30 on a spring-forward night) is refused,
      naming the nearest valid times: guessing would book an hour the caller didn't say.
    - A wall time that happens twice (01:30 on a fall-back night) means the earlier
      instant (fold=0), i.e. still on summer time, which is what people usually mean.
    """
    text = value.strip() if isinstance(value, str) else ""
    match = _ISO.fullmatch(text)
    if match is None:
        raise _unreadable(field)
    parts = match.groupdict()
    if not YEARS[0] <= int(parts["year"]) <= YEARS[1]:
        # A real date, but no calendar question is about it (and the arithmetic around the
        # year 9999 overflows): the caller is asked for the date again, like any unreadable one.
        raise _unreadable(field)
    try:
        day = date(int(parts["year"]), int(parts["month"]), int(parts["day"]))
        if parts["hour"] is None:
            if not allow_date:
                raise InvalidArguments(
                    f"{field} has a date but no time; send it like {day.isoformat()}T14:00:00."
                )
            return _start_of_day(day, tz)
        wall = datetime(
            day.year,
            day.month,
            day.day,
            int(parts["hour"]),
            int(parts["minute"]),
            int(parts["second"] or 0),
            int((parts["fraction"] or "0")[:6].ljust(6, "0")),
        )
        offset = _parse_offset(parts["offset"])
    except ValueError:
        # Month 13, February 30, 25:00, offset beyond 24 hours, ...
        raise _unreadable(field) from None
    if offset is not None:
        return wall.replace(tzinfo=offset).astimezone(tz)
    return _localize(wall, tz)


def _unreadable(field: str) -> InvalidArguments:
    return InvalidArguments(f"I could not read {field}; send it like 2031-03-11T14:00:00.")


def _parse_offset(text: str | None) -> timezone | None:
    if text is None:
        return None
    if text.upper() == "Z":
        return UTC
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    if minutes >= 60:
        raise ValueError("offset minutes out of range")
    sign = -1 if text[0] == "-" else 1
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def _exists(wall: datetime, tz: ZoneInfo) -> bool:
    """False for wall times skipped by a clock change.

    zoneinfo happily attaches an offset to a skipped time; only a round trip through UTC
    shows that the wall clock never reads it.
    """
    local = wall.replace(tzinfo=tz)
    return local.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == wall


def _localize(wall: datetime, tz: ZoneInfo) -> datetime:
    if not _exists(wall, tz):
        raise InvalidArguments(_gap_message(wall, tz))
    # fold=0 (the default) picks the earlier instant of a repeated wall time.
    return wall.replace(tzinfo=tz)


def _gap(wall: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The skipped wall-clock range [first missing, first valid again) around `wall`."""
    # For a skipped time, fold=0 gives the offset before the change, fold=1 the one after.
    before = wall.replace(tzinfo=tz, fold=0).utcoffset()
    after = wall.replace(tzinfo=tz, fold=1).utcoffset()
    assert before is not None and after is not None
    epoch = datetime(1970, 1, 1)
    # The change happens somewhere in [lo, hi] (seconds since the epoch, UTC).
    lo = int((wall - after - epoch).total_seconds())
    hi = int((wall - before - epoch).total_seconds())
    while lo < hi:
        mid = (lo + hi) // 2
        instant = datetime.fromtimestamp(mid, UTC)
        if instant.astimezone(tz).utcoffset() == after:
            hi = mid
        else:
            lo = mid + 1
    change = epoch + timedelta(seconds=lo)
    return change + before, change + after


def _gap_message(wall: datetime, tz: ZoneInfo) -> str:
    first_missing, first_valid = _gap(wall, tz)
    is_dst_change = wall.replace(tzinfo=tz, fold=0).dst() != wall.replace(tzinfo=tz, fold=1).dst()
    reason = "for daylight saving time" if is_dst_change else "for a time zone change"

    def edge(moment: datetime) -> str:
        # A gap can span midnight or a whole day (Pacific/Apia, 2011), so name the day.
        if moment.date() == wall.date():
            return clock(moment)
        return f"{clock(moment)} on {date_words(moment.date(), with_year=False)}"

    return (
        f"{clock(wall)} does not exist on {date_words(wall.date(), with_year=True)} in "
        f"{tz.key} because the clocks jump forward from {edge(first_missing)} to "
        f"{edge(first_valid)} {reason}; the nearest valid times are "
        f"{edge(first_valid)}, or any time before {edge(first_missing)}."
    )


def _start_of_day(day: date, tz: ZoneInfo) -> datetime:
    midnight = datetime(day.year, day.month, day.day)
    if _exists(midnight, tz):
        return midnight.replace(tzinfo=tz)
    # Some zones (e.g. America/Santiago) skip midnight itself; the day starts when
    # the clocks resume.
    return _gap(midnight, tz)[1].replace(tzinfo=tz)


def to_iso(dt: datetime, tz: ZoneInfo) -> str:
    """ISO 8601 in `tz` with its offset, to the second: 2031-03-11T10:00:00-04:00."""
    return dt.astimezone(tz).isoformat(timespec="seconds")
