"""Opening hours → UTC intervals across DST changes, and the rules model. Pure, no I/O."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from vapi_calendar.tools.hours import bookable_bounds, day_span, open_intervals, wall_range, widen
from vapi_calendar.tools.rules import BookingRules, RulesError, merge_rules, validate_rules
from vapi_calendar.tools.slots import Interval

NY = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")  # moves its clocks by 30 minutes


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def test_ordinary_day_is_one_interval() -> None:
    assert list(wall_range(date(2031, 3, 11), "09:00", "17:00", NY)) == [
        Interval(utc(2031, 3, 11, 13), utc(2031, 3, 11, 21))
    ]


def test_spring_forward_night_is_shorter_and_skips_the_gap() -> None:
    # New York, 2031-03-09: 2:00 EST jumps to 3:00 EDT.
    (span,) = wall_range(date(2031, 3, 9), "01:00", "04:00", NY)
    assert (span.start, span.end) == (utc(2031, 3, 9, 6), utc(2031, 3, 9, 8))
    # A range starting inside the gap starts when the clocks resume.
    (gap,) = wall_range(date(2031, 3, 9), "02:30", "03:30", NY)
    assert (gap.start, gap.end) == (utc(2031, 3, 9, 7), utc(2031, 3, 9, 7, 30))
    assert day_span(date(2031, 3, 9), NY).duration == timedelta(hours=23)


def test_fall_back_night_counts_the_repeated_hour_twice() -> None:
    # New York, 2031-11-02: 1:00-2:00 happens first in EDT, then in EST.
    assert list(wall_range(date(2031, 11, 2), "01:00", "01:30", NY)) == [
        Interval(utc(2031, 11, 2, 5), utc(2031, 11, 2, 5, 30)),
        Interval(utc(2031, 11, 2, 6), utc(2031, 11, 2, 6, 30)),
    ]
    # Berlin, 2031-10-26: 3:00 CEST falls back to 2:00 CET; 01:00-04:00 lasts four hours.
    (span,) = wall_range(date(2031, 10, 26), "01:00", "04:00", BERLIN)
    assert span.duration == timedelta(hours=4)
    assert day_span(date(2031, 10, 26), BERLIN).duration == timedelta(hours=25)


def test_half_hour_dst_zone() -> None:
    # Lord Howe Island, 2031-04-06: 2:00 (+11) falls back to 1:30 (+10:30).
    (span,) = wall_range(date(2031, 4, 6), "01:00", "03:00", LORD_HOWE)
    assert span.duration == timedelta(hours=2, minutes=30)


def test_open_intervals_apply_overrides_and_closed_days() -> None:
    rules = validate_rules(
        {
            "dateOverrides": {
                "2031-03-12": [],
                "2031-03-15": [{"start": "10:00", "end": "12:00"}],
            }
        }
    )
    week = Interval(utc(2031, 3, 10, 4), utc(2031, 3, 17, 4))  # Monday to Sunday, New York
    opened = {o.start.astimezone(NY).date(): o for o in open_intervals(rules, NY, week)}
    assert sorted(opened) == [
        date(2031, 3, 10),
        date(2031, 3, 11),
        date(2031, 3, 13),
        date(2031, 3, 14),
        date(2031, 3, 15),
    ]
    assert opened[date(2031, 3, 15)] == Interval(utc(2031, 3, 15, 14), utc(2031, 3, 15, 16))


def test_bookable_bounds_and_buffers() -> None:
    rules = BookingRules(minimum_notice_minutes=90, booking_horizon_days=2)
    now = utc(2031, 3, 11, 15)  # 11:00 in New York
    bounds = bookable_bounds(rules, NY, now)
    assert bounds.start == utc(2031, 3, 11, 16, 30)
    assert bounds.end == utc(2031, 3, 14, 4)  # end of Thursday the 13th, local
    busy = [Interval(utc(2031, 3, 11, 15), utc(2031, 3, 11, 16))]
    assert widen(busy, before=timedelta(minutes=10), after=timedelta(minutes=20)) == [
        Interval(utc(2031, 3, 11, 14, 40), utc(2031, 3, 11, 16, 10))
    ]


def test_rules_validation_names_the_field() -> None:
    with pytest.raises(RulesError, match=r"^workingHours.monday\[0\]: end must be after start"):
        validate_rules({"workingHours": {"monday": [{"start": "17:00", "end": "09:00"}]}})
    with pytest.raises(RulesError, match=r"^dateOverrides: 2031-03-11: 09:00-12:00 overlaps"):
        validate_rules(
            {
                "dateOverrides": {
                    "2031-03-11": [
                        {"start": "09:00", "end": "12:00"},
                        {"start": "11:00", "end": "13:00"},
                    ]
                }
            }
        )
    with pytest.raises(RulesError, match="start must be before 24:00"):
        validate_rules({"workingHours": {"monday": [{"start": "24:00", "end": "24:00"}]}})
    with pytest.raises(RulesError, match=r"monday\[0\].end: use 24-hour HH:MM"):
        validate_rules({"workingHours": {"monday": [{"start": "09:00", "end": "5pm"}]}})


def test_merge_keeps_the_oauth_key_and_stores_camel_case() -> None:
    merged = merge_rules(
        {"timezoneSource": "default", "bufferAfterMinutes": 5},
        {"buffer_before_minutes": 10, "bufferAfterMinutes": None},
    )
    assert merged == {"timezoneSource": "default", "bufferBeforeMinutes": 10}
    with pytest.raises(RulesError, match="timezoneSource"):
        merge_rules({}, {"timezoneSource": "calendar"})
