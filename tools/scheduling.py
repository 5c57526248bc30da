"""Shared scheduling vocabulary: the requested window, the rules applied to it, result shapes.

A `Schedule` is one read of the calendar (one freeBusy across every busy calendar, plus an
events.list only when a per-day maximum is set) interpreted through the user's booking rules. All
three time-taking tools use it, so "is this slot bookable" and "what else is open" have one
answer everywhere.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import islice
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from vapi_calendar.ports.calendar import Event
from vapi_calendar.tools.appointments import OURS, event_interval
from vapi_calendar.tools.context import ToolContext
from vapi_calendar.tools.errors import BookingCalendarUnreadable, InvalidArguments
from vapi_calendar.tools.hours import bookable_bounds, day_span, local_day, open_intervals, widen
from vapi_calendar.tools.rules import BookingRules
from vapi_calendar.tools.slots import Interval, free_slots, is_free, merge
from vapi_calendar.tools.spoken import duration_words, spoken, spoken_choices
from vapi_calendar.tools.timeparse import parse_datetime, parse_timezone, to_iso

MAX_SLOTS = 6
MAX_ALTERNATIVES = 3
# Alternatives come from the requested day, then this many following days (within the horizon).
ALTERNATIVE_DAYS = 7
MAX_WINDOW = timedelta(days=14)
# Said after an answer made without the busy time of a calendar that could not be read.
INCOMPLETE_CLAUSE = "Availability may be incomplete: one of the calendars could not be read."


@dataclass(frozen=True, slots=True)
class Request:
    window: Interval  # what the caller asked about
    duration: timedelta  # length of one appointment
    tz: ZoneInfo  # how to read and speak times


class TimeArguments(Protocol):
    """The time fields every scheduling tool takes, as its argument model names them."""

    start_date_time: str
    end_date_time: str | None
    duration_minutes: int | None
    time_zone: str | None


def read_request(
    ctx: ToolContext,
    args: TimeArguments,
    *,
    end_is_appointment_end: bool,
    default_duration: timedelta,
) -> Request:
    """The window asked about and the appointment length.

    With `end_is_appointment_end` (booking) an end time fixes the appointment's length; for an
    availability question it only bounds the window searched for slots of `duration_minutes`
    (default: the user's `defaultDurationMinutes`).
    """
    input_tz = parse_timezone(args.time_zone, ctx.user_tz)
    # Arithmetic in UTC: aware datetimes sharing one ZoneInfo subtract by wall clock, which is
    # an hour off across a DST change.
    start_at = parse_datetime(args.start_date_time, input_tz, field="startDateTime").astimezone(UTC)
    end_at = (
        parse_datetime(args.end_date_time, input_tz, field="endDateTime").astimezone(UTC)
        if args.end_date_time
        else None
    )
    if end_at is not None and end_at <= start_at:
        raise InvalidArguments("The end time must be after the start time.")
    if args.duration_minutes is not None:
        duration = timedelta(minutes=args.duration_minutes)
    elif end_at is not None and (end_is_appointment_end or end_at - start_at < default_duration):
        duration = end_at - start_at
    else:
        duration = default_duration
    end_at = end_at or start_at + duration
    if end_at - start_at > MAX_WINDOW:
        raise InvalidArguments("Please ask about at most two weeks at a time.")
    if duration > end_at - start_at:
        raise InvalidArguments("The appointment is longer than the time range asked about.")
    if end_at <= ctx.now:
        raise InvalidArguments(
            f"That time has already passed; it is now {spoken(ctx.now, ctx.user_tz, now=ctx.now)}."
        )
    return Request(Interval(start_at, end_at), duration, ctx.user_tz)


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: str  # machine code: tooSoon, beyondHorizon, closed, outsideHours, fullyBooked, busy
    sentence: str  # lower-case clause, e.g. "that time is taken"


@dataclass(frozen=True, slots=True)
class Schedule:
    rules: BookingRules
    tz: ZoneInfo
    now: datetime
    busy: list[Interval]  # merged, already widened by the buffers
    bookings_per_day: Counter[date] = field(default_factory=Counter)
    # Busy-only calendars whose busy time could not be read: answers are made without them.
    incomplete: tuple[str, ...] = ()
    bounds: Interval = field(init=False)  # from now + notice to the horizon's last day
    # `busy` merged (sorted, disjoint) and the end of each block: the blocks near an opening
    # are found by bisection instead of every opening scanning the whole week.
    _blocked: list[Interval] = field(init=False, repr=False, compare=False)
    _blocked_ends: list[datetime] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Asked for every refusal and every candidate slot: computed once.
        object.__setattr__(self, "bounds", bookable_bounds(self.rules, self.tz, self.now))
        blocked = merge(self.busy)
        object.__setattr__(self, "_blocked", blocked)
        object.__setattr__(self, "_blocked_ends", [block.end for block in blocked])

    def _day_full(self, day: date) -> bool:
        limit = self.rules.max_bookings_per_day
        return limit is not None and self.bookings_per_day[day] >= limit

    def refusal(self, slot: Interval) -> Refusal | None:
        """Why `slot` cannot be booked, rules first (they need no calendar data), or None."""
        rules, bounds = self.rules, self.bounds
        if slot.start < bounds.start:
            notice = duration_words(rules.minimum_notice_minutes)
            return Refusal("tooSoon", f"bookings need at least {notice} notice")
        if slot.end > bounds.end:
            return Refusal(
                "beyondHorizon", f"bookings open only {rules.booking_horizon_days} days ahead"
            )
        day = local_day(slot.start, self.tz)
        opens = open_intervals(rules, self.tz, slot)
        if not any(o.contains(slot) for o in opens):
            if not open_intervals(rules, self.tz, day_span(day, self.tz)):
                return Refusal("closed", "we are closed that day")
            return Refusal("outsideHours", "that is outside working hours")
        if self._day_full(day):
            return Refusal("fullyBooked", "that day is fully booked")
        if not is_free(slot, self.busy):
            return Refusal("busy", "that time is taken")
        return None

    def free(self, span: Interval, duration: timedelta, limit: int | None = None) -> list[Interval]:
        """Bookable slots inside `span`, earliest first, on the interval grid of each opening."""
        return list(islice(self._free(span, duration), limit))

    def _free(self, span: Interval, duration: timedelta) -> Iterator[Interval]:
        """`free` one slot at a time, so a caller that has enough stops the search."""
        bounds, step = self.bounds, timedelta(minutes=self.rules.slot_interval_minutes)
        counts_days = self.rules.max_bookings_per_day is not None
        for opening in open_intervals(self.rules, self.tz, span):
            # The grid starts where the opening starts (9:00, 9:30, …), not at the question;
            # only its points inside `span` are tried.
            start = opening.start
            if span.start > start:
                start += -((start - span.start) // step) * step
            end = min(opening.end, span.end)
            if start + duration > end:
                continue
            within = Interval(start, end)
            for slot in free_slots(
                within, self._blocked_near(within), duration, step=step, align=None
            ):
                if not bounds.contains(slot):
                    continue
                if counts_days and self._day_full(local_day(slot.start, self.tz)):
                    continue
                yield slot

    def _blocked_near(self, opening: Interval) -> list[Interval]:
        """The busy blocks that overlap `opening` (the others cannot affect its slots)."""
        first = bisect_right(self._blocked_ends, opening.start)
        last = bisect_left(self._blocked, opening.end, lo=first, key=lambda block: block.start)
        return self._blocked[first:last]

    def alternatives(self, target: Interval, limit: int = MAX_ALTERNATIVES) -> list[Interval]:
        """Up to `limit` bookable slots like `target`: the same day first (closest first), then
        the following days (earliest first); returned in time order so they read naturally."""
        day = local_day(target.start, self.tz)
        span = Interval(
            day_span(day, self.tz).start,
            day_span(day + timedelta(days=ALTERNATIVE_DAYS), self.tz).end,
        )
        same_day: list[Interval] = []
        later: list[Interval] = []
        # Slots come earliest first, so the whole requested day comes before any later one,
        # and the later days are searched only until there are enough.
        for candidate in self._free(span, target.duration):
            if candidate == target:
                continue
            if local_day(candidate.start, self.tz) == day:
                same_day.append(candidate)
            elif len(same_day) + len(later) < limit:
                later.append(candidate)
            else:
                break
        same_day.sort(key=lambda c: (abs(c.start - target.start), c.start))
        return sorted((same_day + later)[:limit], key=lambda c: c.start)


def search_span(window: Interval, tz: ZoneInfo) -> Interval:
    """What one calendar read must cover: the window and where alternatives may come from."""
    first = local_day(window.start, tz)
    last = local_day(window.end, tz) + timedelta(days=ALTERNATIVE_DAYS)
    return Interval(day_span(first, tz).start, day_span(last, tz).end)


def _without(busy: list[Interval], hole: Interval) -> list[Interval]:
    """Busy time minus `hole` (an appointment being moved must not block its own new time).

    freeBusy returns merged blocks, so an event overlapping the moved one loses the overlapped
    part too; that needs a calendar that is already double-booked, and the alternative (listing
    every event to subtract exactly one) costs a request on every reschedule.
    """
    kept: list[Interval] = []
    for block in busy:
        if not block.overlaps(hole):
            kept.append(block)
            continue
        if block.start < hole.start:
            kept.append(Interval(block.start, hole.start))
        if hole.end < block.end:
            kept.append(Interval(hole.end, block.end))
    return kept


async def load_schedule(
    ctx: ToolContext,
    rules: BookingRules,
    window: Interval,
    *,
    moving: Event | None = None,
) -> Schedule:
    """Read the calendar once for `window` and its alternatives; `moving` is an event being
    rescheduled, whose current time and booking do not count against its new time."""
    tz = ctx.user_tz
    span = search_span(window, tz)
    before = timedelta(minutes=rules.buffer_before_minutes)
    after = timedelta(minutes=rules.buffer_after_minutes)
    # Widened by the buffers so blocks just outside the range still push slots away.
    query = Interval(min(span.start, window.start) - before, max(span.end, window.end) + after)
    times = await ctx.calendar.busy(
        rules.freebusy_calendar_ids, query.start, query.end, ctx.user.timezone
    )
    # Fail closed where it matters: without the booking calendar's busy time a booking could
    # land on an existing appointment. A busy-only calendar that cannot be read leaves the
    # answer incomplete, which the answer says (`with_incomplete`).
    if rules.booking_calendar_id in times.unreadable:
        raise BookingCalendarUnreadable()
    incomplete = tuple(cid for cid in rules.freebusy_calendar_ids if cid in times.unreadable)
    raw = [Interval(start, end) for start, end in times.busy]
    if moving is not None:
        raw = _without(merge(raw), event_interval(moving))
    counts: Counter[date] = Counter()
    if rules.max_bookings_per_day is not None:
        # Only this rule needs our own bookings one by one; without it, no extra request.
        events = await ctx.calendar.list_events(
            rules.booking_calendar_id, time_min=span.start, time_max=span.end, tags=OURS
        )
        skip = moving.id if moving else None
        counts.update(
            local_day(event_interval(e).start, tz)
            for e in events
            if e.id != skip and e.start is not None
        )
    return Schedule(rules, tz, ctx.now, widen(raw, before=before, after=after), counts, incomplete)


def with_incomplete(schedule: Schedule, result: dict[str, Any]) -> dict[str, Any]:
    """`result` saying which calendars it was made without, when there are any."""
    if not schedule.incomplete:
        return result
    return {
        **result,
        "incomplete": list(schedule.incomplete),
        "message": f"{result['message']} {INCOMPLETE_CLAUSE}",
    }


def slot_json(slot: Interval, tz: ZoneInfo, now: datetime) -> dict[str, Any]:
    return {
        "start": to_iso(slot.start, tz),
        "end": to_iso(slot.end, tz),
        "spoken": spoken(slot.start, tz, now=now),
    }


def unavailable_message(
    when: str, refusal: Refusal, alternatives: list[Interval], tz: ZoneInfo, now: datetime
) -> str:
    if alternatives:
        return (
            f"{when} is not available: {refusal.sentence}. "
            f"Nearest open times: {spoken_choices([a.start for a in alternatives], tz, now)}."
        )
    return f"{when} is not available: {refusal.sentence}. I found no other open time that week."
