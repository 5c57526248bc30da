"""The booking policy itself (`tools.scheduling.Schedule`), without a server or a calendar.

A `Schedule` is one calendar read interpreted through the rules: why a slot is refused, which
slots are free, and which alternatives to offer. These tests build it from rules, a zone, a
fixed "now" and busy blocks, so every rule is checked directly; the end-to-end tests check the
same rules through the webhook.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from vapi_calendar.tools.rules import BookingRules
from vapi_calendar.tools.scheduling import INCOMPLETE_CLAUSE, Schedule, search_span, with_incomplete
from vapi_calendar.tools.slots import Interval

NY = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
# A Monday morning in New York; every date below is relative to it.
NOW = datetime(2031, 3, 3, 8, 0, tzinfo=NY).astimezone(UTC)
HALF_HOUR = timedelta(minutes=30)
EVERY_DAY = {
    day: [{"start": "09:00", "end": "17:00"}]
    for day in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
}


def at(day: int, hour: int, minute: int = 0, tz: ZoneInfo = NY) -> datetime:
    """March `day`, 2031 at hour:minute wall time in `tz`."""
    return datetime(2031, 3, day, hour, minute, tzinfo=tz)


def slot(day: int, hour: int, minute: int = 0, length: timedelta = HALF_HOUR) -> Interval:
    start = at(day, hour, minute)
    return Interval(start, start + length)


def schedule(
    busy: list[Interval] | None = None,
    *,
    tz: ZoneInfo = NY,
    now: datetime = NOW,
    per_day: dict[date, int] | None = None,
    **rules: Any,
) -> Schedule:
    return Schedule(BookingRules.for_user(rules), tz, now, busy or [], Counter(per_day or {}))


def clock(moments: list[Interval], tz: ZoneInfo = NY) -> list[str]:
    return [s.start.astimezone(tz).strftime("%d %H:%M") for s in moments]


# -- refusal: each rule, in the order a receptionist would say it -----------------------------


def test_a_free_slot_in_working_hours_is_bookable() -> None:
    assert schedule().refusal(slot(4, 10)) is None


def test_too_soon_comes_first_and_names_the_notice() -> None:
    refusal = schedule(minimumNoticeMinutes=120).refusal(slot(3, 9))
    assert refusal is not None and refusal.reason == "tooSoon"
    assert refusal.sentence == "bookings need at least 2 hours notice"
    assert schedule(minimumNoticeMinutes=60).refusal(slot(3, 9)) is None


def test_beyond_the_horizon_ends_at_the_end_of_its_last_local_day() -> None:
    rules = {"bookingHorizonDays": 2, "workingHours": EVERY_DAY}
    assert schedule(**rules).refusal(slot(5, 16, 30)) is None  # last day, last slot
    refusal = schedule(**rules).refusal(slot(6, 9))
    assert refusal is not None and refusal.reason == "beyondHorizon"
    assert refusal.sentence == "bookings open only 2 days ahead"


def test_a_closed_day_and_a_time_outside_hours_are_told_apart() -> None:
    closed = schedule().refusal(slot(8, 10))  # Saturday: closed by default
    assert closed is not None and (closed.reason, closed.sentence) == (
        "closed",
        "we are closed that day",
    )
    early = schedule().refusal(slot(4, 8, 30))
    assert early is not None and early.reason == "outsideHours"
    late = schedule().refusal(slot(4, 16, 45))  # would end after 17:00
    assert late is not None and late.reason == "outsideHours"


def test_a_date_override_replaces_the_weekday_hours() -> None:
    rules = {"dateOverrides": {"2031-03-04": [{"start": "12:00", "end": "14:00"}]}}
    assert schedule(**rules).refusal(slot(4, 12)) is None
    morning = schedule(**rules).refusal(slot(4, 10))
    assert morning is not None and morning.reason == "outsideHours"
    closed = schedule(dateOverrides={"2031-03-04": []}).refusal(slot(4, 10))
    assert closed is not None and closed.reason == "closed"


def test_a_full_day_is_refused_before_its_free_time() -> None:
    full = schedule(maxBookingsPerDay=2, per_day={date(2031, 3, 4): 2}).refusal(slot(4, 10))
    assert full is not None and full.reason == "fullyBooked"
    assert schedule(maxBookingsPerDay=3, per_day={date(2031, 3, 4): 2}).refusal(slot(4, 10)) is None


def test_busy_time_blocks_an_overlapping_slot_but_not_a_touching_one() -> None:
    busy = [Interval(at(4, 10), at(4, 11))]
    taken = schedule(busy).refusal(slot(4, 10, 30))
    assert taken is not None and (taken.reason, taken.sentence) == ("busy", "that time is taken")
    assert schedule(busy).refusal(slot(4, 11)) is None
    assert schedule(busy).refusal(slot(4, 9, 30)) is None


# -- free: the grid, busy time and limits -------------------------------------------------------


def test_free_slots_follow_the_interval_grid_from_the_opening() -> None:
    span = Interval(at(4, 9, 10), at(4, 11))
    found = schedule(slotIntervalMinutes=20).free(span, HALF_HOUR)
    # The grid is 9:00, 9:20, 9:40 …; 9:00 starts before the question, so 9:20 is first.
    assert clock(found) == ["04 09:20", "04 09:40", "04 10:00", "04 10:20"]


def test_free_slots_skip_busy_time_and_stop_at_the_limit() -> None:
    busy = [Interval(at(4, 9, 30), at(4, 10, 30))]
    found = schedule(busy).free(Interval(at(4, 9), at(4, 17)), HALF_HOUR, limit=3)
    assert clock(found) == ["04 09:00", "04 10:30", "04 11:00"]


def test_free_slots_leave_out_days_that_are_full_or_closed() -> None:
    span = Interval(at(7, 0), at(10, 0))  # Friday to Monday morning
    found = schedule(maxBookingsPerDay=1, per_day={date(2031, 3, 7): 1}).free(span, HALF_HOUR)
    assert {s.start.astimezone(NY).date() for s in found} == set()  # Fri full, weekend closed
    open_weekend = schedule(workingHours=EVERY_DAY).free(span, HALF_HOUR)
    assert {s.start.astimezone(NY).day for s in open_weekend} == {7, 8, 9}


def test_free_slots_never_start_before_the_notice_or_end_past_the_horizon() -> None:
    found = schedule(minimumNoticeMinutes=180).free(Interval(at(3, 9), at(3, 17)), HALF_HOUR)
    assert clock(found)[0] == "03 11:00"  # now is 8:00, so nothing before 11:00


# -- alternatives: the same day closest first, then the following days -------------------------


def test_alternatives_prefer_the_same_day_closest_first_and_read_in_time_order() -> None:
    busy = [Interval(at(4, 9), at(4, 12)), Interval(at(4, 13), at(4, 17))]
    target = slot(4, 10)
    offered = schedule(busy).alternatives(target)
    assert clock(offered) == ["04 12:00", "04 12:30", "05 09:00"]


def test_alternatives_skip_the_target_itself_and_closed_days() -> None:
    target = slot(7, 16, 30)  # Friday's last slot; the weekend is closed
    offered = schedule().alternatives(target)
    assert slot(7, 16, 30) not in offered
    assert [s.start.astimezone(NY).weekday() for s in offered] == [4, 4, 4]


@pytest.mark.parametrize(
    ("busy", "target", "rules"),
    [
        ([], slot(4, 10), {}),  # the same day has plenty: later days are never needed
        ([Interval(at(4, 9), at(4, 16, 30))], slot(4, 10), {}),  # one left that day
        ([Interval(at(4, 9), at(5, 15))], slot(4, 10), {}),  # none that day, one the next
        ([Interval(at(5, 9), at(5, 17))], slot(4, 16, 30), {}),  # the next day is taken
        ([], slot(4, 10), {"workingHours": EVERY_DAY, "bufferBeforeMinutes": 15}),
        ([], slot(7, 16, 30), {"maxBookingsPerDay": 2}),  # full days are skipped
    ],
)
def test_alternatives_are_exactly_the_nearest_of_every_free_slot_of_the_week(
    busy: list[Interval], target: Interval, rules: dict[str, Any]
) -> None:
    """The search stops once it has enough; what it offers is what ranking every free slot of
    the day and the following week would offer."""
    per_day = {date(2031, 3, 8): 2, date(2031, 3, 10): 2} if "maxBookingsPerDay" in rules else None
    plan = schedule(busy, per_day=per_day, **rules)
    day = target.start.astimezone(NY).date()
    week = Interval(at(day.day, 0), at(day.day + 8, 0))
    every = [c for c in plan.free(week, target.duration) if c != target]
    same_day = sorted(
        (c for c in every if c.start.astimezone(NY).date() == day),
        key=lambda c: (abs(c.start - target.start), c.start),
    )
    later = [c for c in every if c.start.astimezone(NY).date() > day]
    expected = sorted((same_day + later)[:3], key=lambda c: c.start)
    assert expected, "each case has something to offer"
    assert plan.alternatives(target) == expected


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (at(4, 10, 10), at(4, 12)),  # off the grid: the next grid point, not 10:10
        (at(4, 10), at(4, 10, 30)),  # one slot
        (at(4, 7), at(4, 9, 45)),  # from before opening
        (at(4, 11, 50), at(5, 9, 40)),  # across the lunch break and the night
        (at(4, 16, 50), at(4, 17, 30)),  # nothing fits
    ],
)
def test_free_slots_of_a_span_are_the_days_grid_points_inside_it(
    start: datetime, end: datetime
) -> None:
    """Only the grid points inside the span are tried; the grid still starts where each
    opening starts."""
    lunch = {
        day: [{"start": "09:00", "end": "12:00"}, {"start": "13:05", "end": "17:00"}]
        for day in ("monday", "tuesday", "wednesday", "thursday", "friday")
    }
    plan = schedule([Interval(at(4, 14), at(4, 15))], workingHours=lunch, slotIntervalMinutes=20)
    span = Interval(start, end)
    whole_days = Interval(at(4, 0), at(6, 0))
    expected = [s for s in plan.free(whole_days, HALF_HOUR) if span.contains(s)]
    assert plan.free(span, HALF_HOUR) == expected
    assert plan.free(span, HALF_HOUR, limit=1) == expected[:1]


def test_no_alternatives_within_the_week_when_everything_is_taken() -> None:
    week = [Interval(at(3, 0), at(17, 0))]
    assert schedule(week).alternatives(slot(4, 10)) == []


# -- wall-clock hours across daylight-saving changes ---------------------------------------------


def test_spring_forward_night_has_no_slots_in_the_missing_hour() -> None:
    night = {"workingHours": {**EVERY_DAY, "sunday": [{"start": "01:00", "end": "04:00"}]}}
    span = Interval(at(9, 0), at(9, 5))
    found = schedule(now=at(8, 8).astimezone(UTC), **night).free(span, HALF_HOUR)
    # 01:00-04:00 on 9 March 2031 is two hours long: 02:00-03:00 never happens.
    assert clock(found) == ["09 01:00", "09 01:30", "09 03:00", "09 03:30"]


def test_fall_back_night_offers_the_repeated_hour_twice() -> None:
    night = {
        "workingHours": {**EVERY_DAY, "sunday": [{"start": "02:00", "end": "04:00"}]},
        "slotIntervalMinutes": 60,
    }
    october_26 = datetime(2031, 10, 26, tzinfo=BERLIN)
    span = Interval(october_26, october_26 + timedelta(hours=6))
    now = datetime(2031, 10, 20, 8, tzinfo=BERLIN).astimezone(UTC)
    found = schedule(tz=BERLIN, now=now, **night).free(span, timedelta(hours=1))
    assert [(s.start.astimezone(BERLIN).strftime("%H:%M %Z")) for s in found] == [
        "02:00 CEST",
        "02:00 CET",
        "03:00 CET",
    ]


# -- what one calendar read covers ----------------------------------------------------------------


@pytest.mark.parametrize("tz", [NY, BERLIN, ZoneInfo("Pacific/Kiritimati")])
def test_search_span_covers_the_window_and_a_week_of_alternatives(tz: ZoneInfo) -> None:
    window = Interval(at(4, 10, tz=tz), at(4, 11, tz=tz))
    span = search_span(window, tz)
    assert span.start.astimezone(tz) == at(4, 0, tz=tz)
    assert span.end.astimezone(tz) == at(12, 0, tz=tz)
    assert span.contains(window)


# -- answers made without a calendar that could not be read -----------------------------------


def test_an_answer_says_which_calendars_it_was_made_without() -> None:
    whole = schedule()
    answer = {"available": True, "message": "Tuesday at 9:00 AM is free."}
    assert with_incomplete(whole, answer) == answer
    partial = Schedule(
        BookingRules.for_user({}), NY, NOW, [], Counter(), incomplete=("team@example.com",)
    )
    said = with_incomplete(partial, answer)
    assert said["incomplete"] == ["team@example.com"]
    assert said["message"] == f"Tuesday at 9:00 AM is free. {INCOMPLETE_CLAUSE}"
    assert answer == {"available": True, "message": "Tuesday at 9:00 AM is free."}  # untouched
