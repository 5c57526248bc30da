from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from vapi_calendar.tools.slots import Interval, free_slots, is_free, merge, nearest_free
from vapi_calendar.tools.timeparse import to_iso

NY = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")

MIN30 = timedelta(minutes=30)
MIN45 = timedelta(minutes=45)
HOUR = timedelta(hours=1)


def at(hour: int, minute: int = 0, second: int = 0) -> datetime:
    """Wall time on Tuesday, March 11, 2031 in New York (EDT, no clock change that day)."""
    return datetime(2031, 3, 11, hour, minute, second, tzinfo=NY)


def span(start: tuple[int, int], end: tuple[int, int]) -> Interval:
    return Interval(at(*start), at(*end))


def starts(slots: list[Interval]) -> list[tuple[int, int]]:
    """Slot starts as New York (hour, minute), to keep expectations readable."""
    return [(s.start.astimezone(NY).hour, s.start.astimezone(NY).minute) for s in slots]


WINDOW = span((9, 0), (12, 0))


# --- Interval ---------------------------------------------------------------------------


def test_interval_is_stored_in_utc() -> None:
    interval = span((9, 0), (10, 0))
    assert interval.start == datetime(2031, 3, 11, 13, tzinfo=UTC)
    assert interval.start.tzinfo is UTC
    assert interval == Interval(
        datetime(2031, 3, 11, 14, tzinfo=BERLIN), datetime(2031, 3, 11, 15, tzinfo=BERLIN)
    )


def test_duration_counts_the_repeated_fall_back_hour() -> None:
    # 00:30 EDT to 02:30 EST is three real hours though the wall clock moves two.
    night = Interval(
        datetime(2031, 11, 2, 0, 30, tzinfo=NY), datetime(2031, 11, 2, 2, 30, tzinfo=NY)
    )
    assert night.duration == timedelta(hours=3)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (datetime(2031, 3, 11, 9), datetime(2031, 3, 11, 10)),
        (at(10), at(9)),
    ],
)
def test_interval_rejects_naive_or_reversed(start: datetime, end: datetime) -> None:
    with pytest.raises(ValueError):
        Interval(start, end)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (span((9, 0), (10, 0)), span((10, 0), (11, 0)), False),  # touching
        (span((9, 0), (10, 0)), span((9, 59), (11, 0)), True),
        (span((9, 0), (12, 0)), span((10, 0), (11, 0)), True),  # nested
        (span((10, 0), (11, 0)), span((9, 0), (12, 0)), True),
        (span((9, 0), (10, 0)), span((11, 0), (12, 0)), False),
        (span((9, 0), (12, 0)), span((10, 0), (10, 0)), False),  # empty overlaps nothing
    ],
)
def test_overlaps(a: Interval, b: Interval, expected: bool) -> None:
    assert a.overlaps(b) is expected
    assert b.overlaps(a) is expected


@pytest.mark.parametrize(
    ("other", "expected"),
    [
        (span((9, 0), (12, 0)), True),
        (span((10, 0), (11, 0)), True),
        (span((8, 59), (10, 0)), False),
        (span((11, 0), (12, 1)), False),
        (at(9), True),
        (at(11, 59), True),
        (at(12), False),  # half-open: the end is outside
        (at(8, 59), False),
    ],
)
def test_contains(other: Interval | datetime, expected: bool) -> None:
    assert WINDOW.contains(other) is expected


# --- merge ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ([], []),
        ([span((9, 0), (10, 0))], [span((9, 0), (10, 0))]),
        ([span((9, 0), (10, 0)), span((10, 0), (11, 0))], [span((9, 0), (11, 0))]),
        ([span((9, 0), (10, 30)), span((10, 0), (11, 0))], [span((9, 0), (11, 0))]),
        ([span((9, 0), (12, 0)), span((10, 0), (11, 0))], [span((9, 0), (12, 0))]),
        (
            [span((13, 0), (14, 0)), span((9, 0), (10, 0)), span((9, 30), (11, 0))],
            [span((9, 0), (11, 0)), span((13, 0), (14, 0))],
        ),
        (
            [span((9, 0), (10, 0)), span((10, 1), (11, 0))],
            [span((9, 0), (10, 0)), span((10, 1), (11, 0))],
        ),
        ([span((9, 0), (9, 0)), span((10, 0), (11, 0))], [span((10, 0), (11, 0))]),
        (
            # 15:00 in Berlin (CET) is 10:00 in New York (EDT): touching, so merged.
            [
                span((11, 0), (12, 0)),
                Interval(
                    datetime(2031, 3, 11, 15, tzinfo=BERLIN),
                    datetime(2031, 3, 11, 16, tzinfo=BERLIN),
                ),
            ],
            [span((10, 0), (12, 0))],
        ),
    ],
)
def test_merge(given: list[Interval], expected: list[Interval]) -> None:
    assert merge(given) == expected


def test_merge_accepts_any_iterable() -> None:
    assert merge(iter([span((10, 0), (11, 0)), span((9, 0), (10, 0))])) == [span((9, 0), (11, 0))]


# --- is_free ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("busy", "expected"),
    [
        ([], True),
        ([span((9, 0), (10, 0)), span((11, 0), (12, 0))], True),  # touching both sides
        ([span((10, 30), (10, 45))], False),
        ([span((9, 0), (12, 0))], False),
    ],
)
def test_is_free(busy: list[Interval], expected: bool) -> None:
    assert is_free(span((10, 0), (11, 0)), busy) is expected


# --- free_slots -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("busy", "duration", "step", "expected"),
    [
        ([], MIN30, None, [(9, 0), (9, 30), (10, 0), (10, 30), (11, 0), (11, 30)]),
        (
            # Busy across both window edges.
            [span((8, 30), (9, 15)), span((11, 45), (12, 30))],
            MIN30,
            None,
            [(9, 30), (10, 0), (10, 30), (11, 0)],
        ),
        (
            # A slot may start exactly when a meeting ends and end when the next begins.
            [span((9, 0), (9, 30)), span((10, 0), (10, 30))],
            MIN30,
            None,
            [(9, 30), (10, 30), (11, 0), (11, 30)],
        ),
        (
            # Overlapping busy intervals block their union.
            [span((9, 30), (10, 15)), span((10, 0), (10, 45))],
            MIN30,
            None,
            [(9, 0), (11, 0), (11, 30)],
        ),
        (
            # Every gap is 45 minutes; an hour fits nowhere, whatever the step.
            [span((9, 45), (10, 30)), span((11, 15), (11, 45))],
            HOUR,
            timedelta(minutes=15),
            [],
        ),
        (
            # Step shorter than the duration: overlapping offers.
            [span((10, 0), (10, 30))],
            HOUR,
            MIN30,
            [(9, 0), (10, 30), (11, 0)],
        ),
        (
            # A two-hour meeting only fits at the start of a three-hour window.
            [],
            timedelta(hours=2),
            None,
            [(9, 0)],
        ),
        ([], timedelta(hours=4), None, []),  # longer than the window
        ([span((8, 0), (13, 0))], MIN30, None, []),
    ],
)
def test_free_slots(
    busy: list[Interval],
    duration: timedelta,
    step: timedelta | None,
    expected: list[tuple[int, int]],
) -> None:
    slots = free_slots(WINDOW, busy, duration, step=step)
    assert starts(slots) == expected
    assert all(slot.duration == duration for slot in slots)


def test_free_slots_inside_open_hours() -> None:
    day = Interval(at(0), datetime(2031, 3, 12, tzinfo=NY))
    open_hours = [span((13, 0), (17, 0)), span((9, 0), (12, 0))]
    slots = free_slots(day, [span((9, 0), (9, 30))], MIN45, open_hours=open_hours)
    # The afternoon grid restarts at 13:00 instead of continuing the morning's (13:30).
    assert starts(slots) == [
        (9, 45),
        (10, 30),
        (11, 15),
        (13, 0),
        (13, 45),
        (14, 30),
        (15, 15),
        (16, 0),
    ]


@pytest.mark.parametrize(
    ("window", "open_hours", "expected"),
    [
        # Open hours are clipped to the window.
        (span((10, 30), (23, 0)), [span((9, 0), (12, 0))], [(10, 30), (11, 15)]),
        # Overlapping open hours are one period.
        (
            span((0, 0), (23, 0)),
            [span((9, 0), (11, 0)), span((10, 0), (12, 0))],
            [(9, 0), (9, 45), (10, 30), (11, 15)],
        ),
        (span((0, 0), (23, 0)), [], []),
        (span((13, 0), (23, 0)), [span((9, 0), (12, 0))], []),
    ],
)
def test_free_slots_open_hours_edges(
    window: Interval, open_hours: list[Interval], expected: list[tuple[int, int]]
) -> None:
    assert starts(free_slots(window, [], MIN45, open_hours=open_hours)) == expected


@pytest.mark.parametrize(
    ("limit", "expected"),
    [
        (None, [(9, 0), (9, 30), (10, 0), (10, 30), (11, 0), (11, 30)]),
        (2, [(9, 0), (9, 30)]),
        (0, []),
    ],
)
def test_free_slots_limit(limit: int | None, expected: list[tuple[int, int]]) -> None:
    assert starts(free_slots(WINDOW, [], MIN30, limit=limit)) == expected


@pytest.mark.parametrize(
    ("window", "options", "expected"),
    [
        # An odd start is rounded up to the next quarter hour: 9:15, never 9:07.
        (span((9, 7), (11, 0)), {}, [(9, 15), (9, 45), (10, 15)]),
        (Interval(at(9, 0, 30), at(11, 0)), {}, [(9, 15), (9, 45), (10, 15)]),
        (span((9, 7), (10, 0)), {"step": timedelta(minutes=15)}, [(9, 15), (9, 30)]),
        # Already on a quarter hour: unchanged.
        (span((9, 45), (11, 0)), {}, [(9, 45), (10, 15)]),
        # Opting out keeps the exact window start.
        (span((9, 7), (11, 0)), {"align": None}, [(9, 7), (9, 37), (10, 7)]),
        # Coarser alignment, e.g. on the hour.
        (span((9, 7), (12, 0)), {"align": HOUR}, [(10, 0), (10, 30), (11, 0), (11, 30)]),
    ],
)
def test_free_slots_alignment(
    window: Interval, options: dict[str, timedelta | None], expected: list[tuple[int, int]]
) -> None:
    assert starts(free_slots(window, [], MIN30, **options)) == expected


@pytest.mark.parametrize(
    ("zone", "expected"),
    [
        # Quarter-hour alignment is wall-clock alignment even at +05:45 and +12:45/+13:45.
        ("Asia/Kathmandu", ["2031-03-11T09:15:00+05:45", "2031-03-11T09:45:00+05:45"]),
        ("Pacific/Chatham", ["2031-03-11T09:15:00+13:45", "2031-03-11T09:45:00+13:45"]),
        ("Asia/Kolkata", ["2031-03-11T09:15:00+05:30", "2031-03-11T09:45:00+05:30"]),
    ],
)
def test_alignment_follows_the_local_wall_clock(zone: str, expected: list[str]) -> None:
    tz = ZoneInfo(zone)
    window = Interval(
        datetime(2031, 3, 11, 9, 7, tzinfo=tz), datetime(2031, 3, 11, 10, 15, tzinfo=tz)
    )
    assert [to_iso(s.start, tz) for s in free_slots(window, [], MIN30)] == expected


def test_free_slots_over_the_fall_back_night() -> None:
    # 00:00 EDT to 04:00 EST is five real hours; 1:00 AM happens twice.
    window = Interval(datetime(2031, 11, 2, 0, tzinfo=NY), datetime(2031, 11, 2, 4, tzinfo=NY))
    assert [to_iso(s.start, NY) for s in free_slots(window, [], HOUR)] == [
        "2031-11-02T00:00:00-04:00",
        "2031-11-02T01:00:00-04:00",
        "2031-11-02T01:00:00-05:00",
        "2031-11-02T02:00:00-05:00",
        "2031-11-02T03:00:00-05:00",
    ]


@pytest.mark.parametrize(
    ("duration", "step"),
    [(timedelta(0), None), (-MIN30, None), (MIN30, timedelta(0)), (MIN30, -MIN30)],
)
def test_free_slots_rejects_non_positive_lengths(
    duration: timedelta, step: timedelta | None
) -> None:
    with pytest.raises(ValueError):
        free_slots(WINDOW, [], duration, step=step)


# --- nearest_free -----------------------------------------------------------------------

FREE = [
    Interval(at(h, m), at(h, m) + MIN30) for h, m in [(9, 0), (9, 30), (10, 0), (11, 0), (13, 0)]
]


@pytest.mark.parametrize(
    ("target", "limit", "expected"),
    [
        # Distances from 10:15: 10:00 is 15 min; 9:30 and 11:00 tie at 45 (earlier first).
        (span((10, 15), (10, 45)), 3, [(10, 0), (9, 30), (11, 0)]),
        (span((10, 15), (10, 45)), 10, [(10, 0), (9, 30), (11, 0), (9, 0), (13, 0)]),
        (span((10, 15), (10, 45)), 1, [(10, 0)]),
        (span((11, 0), (11, 30)), 2, [(11, 0), (10, 0)]),
        (span((18, 0), (18, 30)), 3, [(13, 0), (11, 0), (10, 0)]),
        (span((10, 15), (10, 45)), 0, []),
    ],
)
def test_nearest_free(target: Interval, limit: int, expected: list[tuple[int, int]]) -> None:
    assert starts(nearest_free(target, FREE, limit=limit)) == expected


def test_nearest_free_default_limit_and_empty() -> None:
    assert starts(nearest_free(span((10, 15), (10, 45)), FREE)) == [(10, 0), (9, 30), (11, 0)]
    assert nearest_free(span((10, 15), (10, 45)), []) == []
