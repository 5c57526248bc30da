from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from vapi_calendar.tools.errors import InvalidArguments
from vapi_calendar.tools.spoken import spoken, spoken_range
from vapi_calendar.tools.timeparse import parse_datetime, parse_timezone, to_iso

NY = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
SYDNEY = ZoneInfo("Australia/Sydney")
SANTIAGO = ZoneInfo("America/Santiago")

# A "now" in the same year as the 2031 examples, so no year is spoken.
NOW_2031 = datetime(2031, 1, 15, 12, tzinfo=UTC)
UNREADABLE = "I could not read startDateTime; send it like 2031-03-11T14:00:00."


# --- parse_timezone -------------------------------------------------------------------


@pytest.mark.parametrize("name", [None, "", "   "])
def test_missing_timezone_means_default(name: str | None) -> None:
    assert parse_timezone(name, BERLIN) is BERLIN


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("America/New_York", "America/New_York"),
        (" Europe/Berlin ", "Europe/Berlin"),
        ("australia/sydney", "Australia/Sydney"),
        ("UTC", "UTC"),
    ],
)
def test_known_timezone(name: str, key: str) -> None:
    assert parse_timezone(name, NY).key == key


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("Mars/Olympus", "Mars/Olympus"),
        ("America", "America"),  # a tzdata directory, not a zone
        ("../etc/passwd", "../etc/passwd"),
        ("/etc/localtime", "/etc/localtime"),
        ("Foo\nBar", "Foo Bar"),
        ("x" * 100, "x" * 39 + "…"),
    ],
)
def test_unknown_timezone(name: str, shown: str) -> None:
    with pytest.raises(InvalidArguments) as caught:
        parse_timezone(name, NY)
    assert caught.value.message == f"I don't recognise the time zone '{shown}'."


# --- parse_datetime: accepted shapes ----------------------------------------------------


@pytest.mark.parametrize(
    ("value", "instant"),
    [
        # Explicit offsets are kept as that instant.
        ("2031-03-11T10:00:00-05:00", datetime(2031, 3, 11, 15, tzinfo=UTC)),
        ("2031-03-11T10:00:00+0530", datetime(2031, 3, 11, 4, 30, tzinfo=UTC)),
        ("2031-03-11T10:00:00+05", datetime(2031, 3, 11, 5, tzinfo=UTC)),
        # Z is literally UTC.
        ("2031-03-11T10:00:00Z", datetime(2031, 3, 11, 10, tzinfo=UTC)),
        ("2031-03-11T10:00z", datetime(2031, 3, 11, 10, tzinfo=UTC)),
        # Naive is wall time in the zone: EDT (-4) on March 11, 2031.
        ("2031-03-11T10:00:00", datetime(2031, 3, 11, 14, tzinfo=UTC)),
        ("2031-03-11T10:00", datetime(2031, 3, 11, 14, tzinfo=UTC)),
        ("2031-03-11 10:00", datetime(2031, 3, 11, 14, tzinfo=UTC)),
        ("2031-03-11t10:00", datetime(2031, 3, 11, 14, tzinfo=UTC)),
        ("  2031-03-11T9:30  ", datetime(2031, 3, 11, 13, 30, tzinfo=UTC)),
        ("2031-03-11T10:00:05.25", datetime(2031, 3, 11, 14, 0, 5, 250000, tzinfo=UTC)),
        ("2031-03-11T10:00:05,123456789", datetime(2031, 3, 11, 14, 0, 5, 123456, tzinfo=UTC)),
        # Before the March change New York is on EST (-5).
        ("2031-03-08T10:00", datetime(2031, 3, 8, 15, tzinfo=UTC)),
    ],
)
def test_parse_datetime_instant(value: str, instant: datetime) -> None:
    parsed = parse_datetime(value, NY)
    assert parsed == instant
    assert parsed.tzinfo is NY  # always expressed in the calendar's zone


@pytest.mark.parametrize(
    ("value", "iso"),
    [
        ("2031-03-11T10:00:00-05:00", "2031-03-11T11:00:00-04:00"),
        ("2031-03-11T10:00:00Z", "2031-03-11T06:00:00-04:00"),
        ("2031-03-11 10:00", "2031-03-11T10:00:00-04:00"),
    ],
)
def test_parse_datetime_reads_back_in_local_time(value: str, iso: str) -> None:
    assert to_iso(parse_datetime(value, NY), NY) == iso


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "tomorrow at 3",
        "11/03/2031 10:00",
        "2031-03-11T10",
        "2031-03-11T10:00:00 EST",
        "2031-03-11T10:00:00+5",
        "2031-13-01T10:00",
        "2031-02-30T10:00",
        "2031-03-11T25:00",
        "2031-03-11T10:60",
        "2031-03-11T10:00:00+24:00",
        "2031-03-11T10:00:00+05:60",
        "2031-03-11T10:00:00\n2031-03-12T10:00:00",
    ],
)
def test_garbage_is_refused_with_the_expected_shape(value: str) -> None:
    with pytest.raises(InvalidArguments) as caught:
        parse_datetime(value, NY)
    assert caught.value.message == UNREADABLE


def test_garbage_names_the_field() -> None:
    with pytest.raises(InvalidArguments) as caught:
        parse_datetime("soon", NY, field="endDateTime")
    assert caught.value.message == "I could not read endDateTime; send it like 2031-03-11T14:00:00."


def test_non_string_is_refused() -> None:
    with pytest.raises(InvalidArguments) as caught:
        parse_datetime(20310311, NY)  # type: ignore[arg-type]
    assert caught.value.message == UNREADABLE


# --- parse_datetime: dates alone --------------------------------------------------------


def test_date_alone_asks_for_a_time() -> None:
    with pytest.raises(InvalidArguments) as caught:
        parse_datetime("2031-03-11", NY)
    assert caught.value.message == (
        "startDateTime has a date but no time; send it like 2031-03-11T14:00:00."
    )


@pytest.mark.parametrize(
    ("value", "tz", "iso"),
    [
        ("2031-03-11", NY, "2031-03-11T00:00:00-04:00"),
        ("2031-03-30", BERLIN, "2031-03-30T00:00:00+01:00"),
        # Chile skips midnight itself (00:00 -> 01:00), so the day starts at 01:00.
        ("2031-09-07", SANTIAGO, "2031-09-07T01:00:00-03:00"),
    ],
)
def test_date_alone_allowed_is_start_of_day(value: str, tz: ZoneInfo, iso: str) -> None:
    assert to_iso(parse_datetime(value, tz, allow_date=True), tz) == iso


# --- parse_datetime: daylight saving ----------------------------------------------------


@pytest.mark.parametrize(
    ("value", "tz", "message"),
    [
        (
            "2031-03-09T02:30",
            NY,
            "2:30 AM does not exist on Sunday, March 9, 2031 in America/New_York because "
            "the clocks jump forward from 2:00 AM to 3:00 AM for daylight saving time; "
            "the nearest valid times are 3:00 AM, or any time before 2:00 AM.",
        ),
        (
            "2031-03-09T02:00:00",
            NY,
            "2:00 AM does not exist on Sunday, March 9, 2031 in America/New_York because "
            "the clocks jump forward from 2:00 AM to 3:00 AM for daylight saving time; "
            "the nearest valid times are 3:00 AM, or any time before 2:00 AM.",
        ),
        (
            "2031-03-30T02:15",
            BERLIN,
            "2:15 AM does not exist on Sunday, March 30, 2031 in Europe/Berlin because "
            "the clocks jump forward from 2:00 AM to 3:00 AM for daylight saving time; "
            "the nearest valid times are 3:00 AM, or any time before 2:00 AM.",
        ),
        (
            "2031-10-05T02:30",
            SYDNEY,
            "2:30 AM does not exist on Sunday, October 5, 2031 in Australia/Sydney because "
            "the clocks jump forward from 2:00 AM to 3:00 AM for daylight saving time; "
            "the nearest valid times are 3:00 AM, or any time before 2:00 AM.",
        ),
        (
            # Lord Howe Island moves its clocks by only 30 minutes.
            "2031-10-05T02:10",
            ZoneInfo("Australia/Lord_Howe"),
            "2:10 AM does not exist on Sunday, October 5, 2031 in Australia/Lord_Howe "
            "because the clocks jump forward from 2:00 AM to 2:30 AM for daylight saving "
            "time; the nearest valid times are 2:30 AM, or any time before 2:00 AM.",
        ),
        (
            "2031-09-07T00:30",
            SANTIAGO,
            "12:30 AM does not exist on Sunday, September 7, 2031 in America/Santiago "
            "because the clocks jump forward from 12:00 AM to 1:00 AM for daylight saving "
            "time; the nearest valid times are 1:00 AM, or any time before 12:00 AM.",
        ),
        (
            # Samoa skipped December 30, 2011 entirely when it crossed the date line.
            "2011-12-30T10:00",
            ZoneInfo("Pacific/Apia"),
            "10:00 AM does not exist on Friday, December 30, 2011 in Pacific/Apia because "
            "the clocks jump forward from 12:00 AM to 12:00 AM on Saturday, December 31 "
            "for a time zone change; the nearest valid times are 12:00 AM on Saturday, "
            "December 31, or any time before 12:00 AM.",
        ),
    ],
)
def test_skipped_wall_time_is_refused(value: str, tz: ZoneInfo, message: str) -> None:
    with pytest.raises(InvalidArguments) as caught:
        parse_datetime(value, tz)
    assert caught.value.message == message


@pytest.mark.parametrize(
    ("value", "tz", "iso"),
    [
        # The edges of the gap are real times.
        ("2031-03-09T01:59", NY, "2031-03-09T01:59:00-05:00"),
        ("2031-03-09T03:00", NY, "2031-03-09T03:00:00-04:00"),
        ("2031-03-30T03:00", BERLIN, "2031-03-30T03:00:00+02:00"),
        ("2031-10-05T03:00", SYDNEY, "2031-10-05T03:00:00+11:00"),
        # A skipped time with an explicit offset is a real instant, read back locally.
        ("2031-03-09T02:30:00-05:00", NY, "2031-03-09T03:30:00-04:00"),
    ],
)
def test_around_the_gap(value: str, tz: ZoneInfo, iso: str) -> None:
    assert to_iso(parse_datetime(value, tz), tz) == iso


@pytest.mark.parametrize(
    ("value", "tz", "iso"),
    [
        # A repeated wall time means the earlier instant: still summer time.
        ("2031-11-02T01:30", NY, "2031-11-02T01:30:00-04:00"),
        ("2031-10-26T02:30", BERLIN, "2031-10-26T02:30:00+02:00"),
        ("2031-04-06T02:30", SYDNEY, "2031-04-06T02:30:00+11:00"),
        # An explicit offset selects the later one.
        ("2031-11-02T01:30:00-05:00", NY, "2031-11-02T01:30:00-05:00"),
        ("2031-10-26T02:30:00+01:00", BERLIN, "2031-10-26T02:30:00+01:00"),
    ],
)
def test_repeated_wall_time(value: str, tz: ZoneInfo, iso: str) -> None:
    assert to_iso(parse_datetime(value, tz), tz) == iso


# --- to_iso -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tz", "iso"),
    [
        (NY, "2031-03-11T10:00:00-04:00"),
        (ZoneInfo("Asia/Kolkata"), "2031-03-11T19:30:00+05:30"),
        (ZoneInfo("UTC"), "2031-03-11T14:00:00+00:00"),
    ],
)
def test_to_iso_is_seconds_precision_in_zone(tz: ZoneInfo, iso: str) -> None:
    assert to_iso(datetime(2031, 3, 11, 14, 0, 0, 999999, tzinfo=UTC), tz) == iso


# --- spoken -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instant", "zone", "words"),
    [
        (datetime(2031, 3, 11, 14, tzinfo=UTC), "America/New_York", "10:00 AM EDT"),
        (datetime(2031, 1, 7, 17, 5, tzinfo=UTC), "America/New_York", "12:05 PM EST"),
        (datetime(2031, 3, 11, 4, 30, tzinfo=UTC), "America/New_York", "12:30 AM EDT"),
        (datetime(2031, 3, 11, 9, 45, tzinfo=UTC), "Europe/Berlin", "10:45 AM CET"),
        (datetime(2031, 3, 11, 6, tzinfo=UTC), "Asia/Dubai", "10:00 AM UTC+4"),
        (datetime(2031, 3, 11, 4, 30, tzinfo=UTC), "Asia/Kolkata", "10:00 AM IST"),
        (datetime(2031, 3, 11, 4, 15, tzinfo=UTC), "Asia/Kathmandu", "10:00 AM UTC+5:45"),
        (datetime(2031, 3, 10, 23, 30, tzinfo=UTC), "Australia/Adelaide", "10:00 AM ACDT"),
        (datetime(2031, 7, 8, 0, 30, tzinfo=UTC), "Australia/Adelaide", "10:00 AM ACST"),
        (datetime(2031, 3, 11, 13, tzinfo=UTC), "America/Santiago", "10:00 AM UTC-3"),
        (datetime(2031, 3, 11, 19, 30, tzinfo=UTC), "Pacific/Marquesas", "10:00 AM UTC-9:30"),
        (datetime(2031, 3, 11, 10, tzinfo=UTC), "Antarctica/Troll", "10:00 AM UTC"),
        (datetime(2031, 3, 11, 10, tzinfo=UTC), "UTC", "10:00 AM UTC"),
    ],
)
def test_spoken_time_and_zone(instant: datetime, zone: str, words: str) -> None:
    tz = ZoneInfo(zone)
    local_day = instant.astimezone(tz)
    expected_day = {
        (1, 7): "Tuesday, January 7",
        (3, 11): "Tuesday, March 11",
        (7, 8): "Tuesday, July 8",
    }[(local_day.month, local_day.day)]
    assert spoken(instant, tz, now=NOW_2031) == f"{expected_day} at {words}"


@pytest.mark.parametrize(
    ("now", "words"),
    [
        (datetime(2031, 12, 31, 12, tzinfo=UTC), "Tuesday, March 11 at 10:00 AM EDT"),
        (datetime(2030, 6, 1, tzinfo=UTC), "Tuesday, March 11, 2031 at 10:00 AM EDT"),
        (datetime(2032, 1, 1, 12, tzinfo=UTC), "Tuesday, March 11, 2031 at 10:00 AM EDT"),
        # Already 2031 in UTC but still December 31, 2030 in New York.
        (datetime(2031, 1, 1, 2, tzinfo=UTC), "Tuesday, March 11, 2031 at 10:00 AM EDT"),
    ],
)
def test_spoken_year_only_when_not_this_year(now: datetime, words: str) -> None:
    assert spoken(datetime(2031, 3, 11, 14, tzinfo=UTC), NY, now=now) == words


def test_the_spoken_year_depends_on_the_given_now_never_on_the_machine_clock() -> None:
    moment = datetime(2999, 1, 15, 15, tzinfo=UTC)
    assert spoken(moment, NY, now=datetime(2999, 6, 1, tzinfo=UTC)) == (
        "Tuesday, January 15 at 10:00 AM EST"
    )
    assert spoken(moment, NY, now=NOW_2031) == "Tuesday, January 15, 2999 at 10:00 AM EST"


# --- spoken_range -----------------------------------------------------------------------


def _ny(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2031, month, day, hour, minute, tzinfo=NY)


@pytest.mark.parametrize(
    ("start", "end", "tz", "words"),
    [
        (
            _ny(3, 11, 10),
            _ny(3, 11, 10, 30),
            NY,
            "Tuesday, March 11 from 10:00 to 10:30 AM EDT",
        ),
        (
            _ny(3, 11, 11, 30),
            _ny(3, 11, 12, 30),
            NY,
            "Tuesday, March 11 from 11:30 AM to 12:30 PM EDT",
        ),
        (
            _ny(3, 11, 13),
            _ny(3, 11, 14, 15),
            NY,
            "Tuesday, March 11 from 1:00 to 2:15 PM EDT",
        ),
        (
            _ny(3, 11, 23),
            _ny(3, 12, 1),
            NY,
            "Tuesday, March 11 at 11:00 PM EDT to Wednesday, March 12 at 1:00 AM EDT",
        ),
        (
            # Given in UTC, spoken in Dubai time.
            datetime(2031, 3, 11, 6, tzinfo=UTC),
            datetime(2031, 3, 11, 7, tzinfo=UTC),
            ZoneInfo("Asia/Dubai"),
            "Tuesday, March 11 from 10:00 to 11:00 AM UTC+4",
        ),
        (
            # Across the fall-back change the zone name changes mid-range.
            datetime(2031, 11, 2, 5, 30, tzinfo=UTC),
            datetime(2031, 11, 2, 6, 15, tzinfo=UTC),
            NY,
            "Sunday, November 2 from 1:30 AM EDT to 1:15 AM EST",
        ),
    ],
)
def test_spoken_range(start: datetime, end: datetime, tz: ZoneInfo, words: str) -> None:
    assert spoken_range(start, end, tz, now=NOW_2031) == words


@pytest.mark.parametrize(
    ("start", "end", "words"),
    [
        (
            _ny(3, 11, 10),
            _ny(3, 11, 10, 30),
            "Tuesday, March 11, 2031 from 10:00 to 10:30 AM EDT",
        ),
        (
            _ny(3, 11, 23),
            _ny(3, 12, 1),
            "Tuesday, March 11, 2031 at 11:00 PM EDT to Wednesday, March 12, 2031 at 1:00 AM EDT",
        ),
    ],
)
def test_spoken_range_year_when_not_this_year(start: datetime, end: datetime, words: str) -> None:
    assert spoken_range(start, end, NY, now=datetime(2030, 6, 1, tzinfo=UTC)) == words
