"""Free-time arithmetic on half-open intervals. Pure functions, no I/O.

Intervals are stored in UTC. Two datetimes sharing one ZoneInfo compare and subtract by
wall clock, not by instant, which is wrong across a fall-back hour; UTC has no such hour.
Convert for display with `tools.timeparse.to_iso` / `tools.spoken`, which take the zone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = ["QUARTER_HOUR", "Interval", "free_slots", "is_free", "merge", "nearest_free"]

QUARTER_HOUR = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class Interval:
    """[start, end) between two aware datetimes, normalised to UTC."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        # Most intervals are made from others (already UTC) by the slot arithmetic, tens per
        # tool call: those skip the conversion.
        if self.start.tzinfo is not UTC:
            object.__setattr__(self, "start", _to_utc(self.start))
        if self.end.tzinfo is not UTC:
            object.__setattr__(self, "end", _to_utc(self.end))
        if self.end < self.start:
            raise ValueError(f"Interval ends before it starts: {self.start} > {self.end}")

    @property
    def duration(self) -> timedelta:
        return self.end - self.start

    @property
    def empty(self) -> bool:
        return self.end == self.start

    def overlaps(self, other: Interval) -> bool:
        """True when some instant lies in both; touching intervals do not overlap."""
        if self.empty or other.empty:
            return False
        return self.start < other.end and other.start < self.end

    def contains(self, other: Interval | datetime) -> bool:
        """Whether an instant, or a whole interval, lies inside this one."""
        if isinstance(other, Interval):
            return self.start <= other.start and other.end <= self.end
        return self.start <= other < self.end


def _to_utc(moment: datetime) -> datetime:
    if moment.utcoffset() is None:
        raise ValueError("Interval needs aware datetimes")
    return moment.astimezone(UTC)


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, with overlapping or touching intervals joined; empty intervals dropped."""
    merged: list[Interval] = []
    for item in sorted((i for i in intervals if not i.empty), key=lambda i: i.start):
        if merged and item.start <= merged[-1].end:
            last = merged[-1]
            merged[-1] = Interval(last.start, max(last.end, item.end))
        else:
            merged.append(item)
    return merged


def is_free(slot: Interval, busy: Iterable[Interval]) -> bool:
    return not any(slot.overlaps(b) for b in busy)


def _align_up(moment: datetime, align: timedelta) -> datetime:
    """The first multiple of `align` (counted from the Unix epoch) at or after `moment`."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    remainder = (moment - epoch) % align
    return moment if not remainder else moment + (align - remainder)


def free_slots(
    window: Interval,
    busy: Iterable[Interval],
    duration: timedelta,
    *,
    step: timedelta | None = None,
    open_hours: Iterable[Interval] | None = None,
    limit: int | None = None,
    align: timedelta | None = QUARTER_HOUR,
) -> list[Interval]:
    """Bookable slots of length `duration` inside `window`, earliest first.

    Candidates start at `origin, origin + step, ...` (step defaults to `duration`), where
    origin is the window start rounded up to the next quarter hour: a receptionist offers
    9:15, not 9:07, when asked at 9:07. Pass `align=None` to start exactly at the window
    start. Alignment is computed in UTC; every zone's offset today is a whole number of
    quarter hours (even +05:45 and +12:45), so a UTC quarter hour is a wall-clock quarter
    hour everywhere.

    A candidate is kept when it lies fully inside the window, overlaps no `busy` interval,
    and - if `open_hours` is given - lies fully inside one open interval. Each open
    interval restarts the grid at its own (aligned) start, so after a lunch break the
    first offer is the reopening time rather than whatever the morning's grid hits.

    Extension points: callers pass busy intervals already widened by any buffer before or
    after meetings, and pass working hours (one interval per day) as `open_hours`.
    """
    step = duration if step is None else step
    if duration <= timedelta(0) or step <= timedelta(0):
        raise ValueError("duration and step must be positive")
    if limit is not None and limit <= 0:
        return []

    if open_hours is None:
        periods = [window]
    else:
        periods = [
            Interval(max(o.start, window.start), min(o.end, window.end))
            for o in merge(open_hours)
            if o.overlaps(window)
        ]
    blocked = merge(busy)

    found: list[Interval] = []
    next_busy = 0
    for period in periods:
        start = period.start if align is None else _align_up(period.start, align)
        while start + duration <= period.end:
            candidate = Interval(start, start + duration)
            # Candidates only move forward, so busy intervals that end before this one
            # starts can never matter again.
            while next_busy < len(blocked) and blocked[next_busy].end <= candidate.start:
                next_busy += 1
            if next_busy == len(blocked) or not candidate.overlaps(blocked[next_busy]):
                found.append(candidate)
                if limit is not None and len(found) >= limit:
                    return found
            start += step
    return found


def nearest_free(target: Interval, free: list[Interval], limit: int = 3) -> list[Interval]:
    """Up to `limit` of `free`, closest start to `target.start` first; ties go earlier."""
    ranked = sorted(free, key=lambda slot: (abs(slot.start - target.start), slot.start))
    return ranked[:limit]
