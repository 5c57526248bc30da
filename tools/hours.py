"""Wall-clock opening hours → UTC intervals, exactly, across DST changes. Pure functions.

An opening range such as 09:00-17:00 means "every instant whose local wall clock reads from 9:00
up to 17:00 on that date". Converting only the two ends with one offset is wrong on transition
days: a spring-forward night makes 01:00-04:00 two hours long, and a fall-back night makes
01:00-01:30 happen twice (two separate UTC intervals). So the UTC range around the day is split
at its offset changes, and within each piece (one fixed offset) the wall range is one interval.
Wall times skipped by a gap simply have no instant; repeated wall times get both.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from vapi_calendar.tools.rules import BookingRules, TimeRange, minutes
from vapi_calendar.tools.slots import Interval, merge

# Real UTC offsets lie within ±26 h, so this margin around a local day holds all its instants.
_MARGIN = timedelta(hours=26)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _offset(instant: datetime, tz: ZoneInfo) -> timedelta:
    offset = instant.astimezone(tz).utcoffset()
    assert offset is not None
    return offset


def _transition(lo: datetime, hi: datetime, tz: ZoneInfo) -> datetime:
    """The first instant in (lo, hi] with hi's offset, to the second (offsets differ at lo, hi)."""
    target = _offset(hi, tz)
    low, high = int((lo - _EPOCH).total_seconds()), int((hi - _EPOCH).total_seconds())
    while high - low > 1:
        mid = (low + high) // 2
        if _offset(_EPOCH + timedelta(seconds=mid), tz) == target:
            high = mid
        else:
            low = mid
    return _EPOCH + timedelta(seconds=high)


def _pieces(lo: datetime, hi: datetime, tz: ZoneInfo) -> list[tuple[datetime, datetime, timedelta]]:
    """[lo, hi) split where the offset changes, with each piece's offset.

    Bisection finds one change per half; zones change offset at most about twice a year, so a
    ~3-day range holds at most one change and splitting once per differing half is exact.
    """
    if _offset(lo, tz) == _offset(hi, tz):
        return [(lo, hi, _offset(lo, tz))]
    change = _transition(lo, hi, tz)
    return [(lo, change, _offset(lo, tz)), (change, hi, _offset(hi, tz))]


def _wall(day: date, clock: str) -> datetime:
    """Naive wall time; "24:00" is the next day's midnight."""
    return datetime(day.year, day.month, day.day) + timedelta(minutes=minutes(clock))


@lru_cache(maxsize=8192)
def wall_range(day: date, start: str, end: str, tz: ZoneInfo) -> tuple[Interval, ...]:
    """Every instant whose wall clock in `tz` lies in [start, end) on `day`, as UTC intervals.

    Cached: a pure function of its arguments (tzdata does not change while running), and the
    same few days and opening hours are asked about call after call.
    """
    first, last = _wall(day, start), _wall(day, end)
    lo, hi = (first - _MARGIN).replace(tzinfo=UTC), (last + _MARGIN).replace(tzinfo=UTC)
    found: list[Interval] = []
    for piece_start, piece_end, offset in _pieces(lo, hi, tz):
        begin = max((first - offset).replace(tzinfo=UTC), piece_start)
        finish = min((last - offset).replace(tzinfo=UTC), piece_end)
        if begin < finish:
            found.append(Interval(begin, finish))
    return tuple(merge(found))


@lru_cache(maxsize=4096)
def day_span(day: date, tz: ZoneInfo) -> Interval:
    """The local calendar day as one UTC interval (23, 24 or 25 hours long)."""
    parts = wall_range(day, "00:00", "24:00", tz)
    return Interval(parts[0].start, parts[-1].end)


def local_day(instant: datetime, tz: ZoneInfo) -> date:
    return instant.astimezone(tz).date()


def days_between(span: Interval, tz: ZoneInfo) -> list[date]:
    """Local dates touched by `span`, in order."""
    first, last = local_day(span.start, tz), local_day(span.end, tz)
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def open_intervals(rules: BookingRules, tz: ZoneInfo, span: Interval) -> list[Interval]:
    """Opening hours (weekly hours, date overrides) overlapping `span`, as UTC intervals."""
    found: list[Interval] = []
    # A day before and after: with a negative offset, a local evening can be the next UTC day.
    days = days_between(span, tz)
    for day in [days[0] - timedelta(days=1), *days, days[-1] + timedelta(days=1)]:
        for hours in rules.hours_on(day):
            found.extend(_range(day, hours, tz))
    return [o for o in merge(found) if o.overlaps(span)]


def _range(day: date, hours: TimeRange, tz: ZoneInfo) -> tuple[Interval, ...]:
    return wall_range(day, hours.start, hours.end, tz)


def bookable_bounds(rules: BookingRules, tz: ZoneInfo, now: datetime) -> Interval:
    """From now + minimum notice to the end of the last local day of the horizon."""
    earliest = now + timedelta(minutes=rules.minimum_notice_minutes)
    last_day = local_day(now, tz) + timedelta(days=rules.booking_horizon_days)
    latest = day_span(last_day, tz).end
    return Interval(earliest, max(earliest, latest))


def widen(busy: list[Interval], *, before: timedelta, after: timedelta) -> list[Interval]:
    """Busy blocks grown so a slot that keeps its buffers clear simply must not overlap them.

    A slot needs `before` free ahead of its start and `after` free behind its end, so a busy
    block [s, e) excludes slots starting before e + before or ending after s - after.
    """
    return merge(Interval(b.start - after, b.end + before) for b in busy)
