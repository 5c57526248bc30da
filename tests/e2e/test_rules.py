"""Per-user booking rules: the admin API, and every rule as the tools apply it over HTTP."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.harness.app import FROZEN_NOW, App
from vapi_calendar.tools.booking import event_id_for

CAL = "ana@example.com"
NY = ZoneInfo("America/New_York")
ALL_DAY = [{"start": "00:00", "end": "24:00"}]
EVERY_DAY = {
    day: ALL_DAY
    for day in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
}


def set_rules(app: App, user_id: str = "ana", **rules: Any) -> dict[str, Any]:
    response = app.admin.patch(f"/api/users/{user_id}", json={"rules": rules})
    assert response.status_code == 200, response.text
    return response.json()


def seed(app: App, start: str, end: str, calendar: str = CAL, **extra: Any) -> None:
    app.emulator.control.seed_event(
        calendar,
        {"summary": "Busy", "start": {"dateTime": start}, "end": {"dateTime": end}, **extra},
    )


def starts(result: dict[str, Any], key: str = "slots") -> list[str]:
    return [slot["start"] for slot in result[key]]


def local(moment: datetime) -> str:
    """A naive local ISO time in New York, as the assistant sends it."""
    return moment.astimezone(NY).replace(tzinfo=None).isoformat(timespec="seconds")


def live_events(app: App, calendar: str = CAL) -> list[dict]:
    return [e for e in app.emulator.control.events(calendar) if e.get("status") != "cancelled"]


# -- admin API -----------------------------------------------------------------------------------


def test_get_user_shows_the_effective_rules_with_defaults(app: App) -> None:
    app.create_user("carol", timezone="Europe/Paris")
    rules = app.admin.get("/api/users/carol").json()["rules"]
    assert rules["workingHours"]["monday"] == [{"start": "09:00", "end": "17:00"}]
    assert rules["workingHours"]["saturday"] == [] and rules["workingHours"]["sunday"] == []
    assert rules["minimumNoticeMinutes"] == 60
    assert rules["slotIntervalMinutes"] == 30 and rules["defaultDurationMinutes"] == 30
    assert rules["bookingHorizonDays"] == 60 and rules["maxBookingsPerDay"] is None
    assert rules["bufferBeforeMinutes"] == 0 and rules["bufferAfterMinutes"] == 0
    assert rules["busyCalendarIds"] == ["primary"] and rules["bookingCalendarId"] == "primary"
    assert rules["addGoogleMeet"] is False and rules["sendUpdates"] == "all"
    assert rules["dateOverrides"] == {}


def test_patch_merges_rules_and_null_resets_to_the_default(app: App) -> None:
    user = set_rules(app, bufferAfterMinutes=10, maxBookingsPerDay=4)
    assert user["rules"]["bufferAfterMinutes"] == 10 and user["rules"]["maxBookingsPerDay"] == 4
    assert user["rules"]["bookingHorizonDays"] == 3650  # the fixture's earlier patch is kept
    user = set_rules(app, bufferAfterMinutes=None)
    assert user["rules"]["bufferAfterMinutes"] == 0
    assert user["rules"]["maxBookingsPerDay"] == 4
    assert app.admin.get("/api/users/ana").json()["rules"] == user["rules"]


def test_patch_timezone_keeps_it_over_the_calendars(app: App) -> None:
    response = app.admin.post("/api/users", json={"id": "dora"})  # zone from calendar later
    assert response.status_code == 201
    user = app.admin.patch("/api/users/dora", json={"timezone": "Asia/Tokyo"}).json()
    assert user["timezone"] == "Asia/Tokyo"
    stored = app.store()

    async def read() -> dict:
        await stored.open()
        try:
            found = await stored.get_user("dora")
            assert found is not None
            return found.rules
        finally:
            await stored.close()

    # The OAuth flow adopts the calendar's zone only while this says "default".
    assert asyncio.run(read())["timezoneSource"] != "default"


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (
            {"rules": {"workingHours": {"monday": [{"start": "10:00", "end": "09:00"}]}}},
            "workingHours.monday[0]: end must be after start",
        ),
        (
            {"rules": {"workingHours": {"monday": [{"start": "9am", "end": "17:00"}]}}},
            "workingHours.monday[0].start",
        ),
        (
            {
                "rules": {
                    "workingHours": {
                        "friday": [
                            {"start": "09:00", "end": "12:00"},
                            {"start": "11:00", "end": "13:00"},
                        ]
                    }
                }
            },
            "friday: 09:00-12:00 overlaps 11:00-13:00",
        ),
        ({"rules": {"workingHours": {"funday": []}}}, "workingHours.funday"),
        ({"rules": {"dateOverrides": {"2031-02-30": []}}}, "dateOverrides.2031-02-30"),
        ({"rules": {"bufferBeforeMinutes": -5}}, "bufferBeforeMinutes"),
        ({"rules": {"slotIntervalMinutes": 0}}, "slotIntervalMinutes"),
        ({"rules": {"bookingHorizonDays": 0}}, "bookingHorizonDays"),
        ({"rules": {"busyCalendarIds": []}}, "busyCalendarIds"),
        ({"rules": {"sendUpdates": "sometimes"}}, "sendUpdates"),
        ({"rules": {"bufer": 5}}, "bufer"),
        ({"rules": {"timezoneSource": "calendar"}}, "timezoneSource"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"name": "x"}, "name"),
    ],
)
def test_invalid_rules_get_400_naming_the_field(app: App, body: dict, needle: str) -> None:
    before = app.admin.get("/api/users/ana").json()
    response = app.admin.patch("/api/users/ana", json=body)
    assert response.status_code == 400
    assert needle in response.json()["error"]
    assert app.admin.get("/api/users/ana").json() == before  # nothing changed


def test_patch_unknown_user_is_404(app: App) -> None:
    assert app.admin.patch("/api/users/nobody", json={"rules": {}}).status_code == 404


# -- working hours, overrides, interval, duration ---------------------------------------------


def test_closed_weekend_is_refused_with_alternatives_on_the_next_open_day(app: App) -> None:
    # 2031-03-15 is a Saturday; by default the business opens Monday to Friday, 9 to 5.
    result = app.call_tool("checkAvailability", {"startDateTime": "2031-03-15T10:00:00"})
    assert result["available"] is False and result["reason"] == "closed"
    assert "closed" in result["message"]
    assert starts(result, "alternatives") == [
        "2031-03-17T09:00:00-04:00",
        "2031-03-17T09:30:00-04:00",
        "2031-03-17T10:00:00-04:00",
    ]
    assert all("Monday, March 17" in alt["spoken"] for alt in result["alternatives"])
    assert app.emulator.control.requests() == {"freebusy": 1}


def test_several_ranges_a_day_and_the_gap_between_them(app: App) -> None:
    hours = [{"start": "09:00", "end": "12:00"}, {"start": "13:00", "end": "17:00"}]
    set_rules(app, workingHours={"tuesday": hours})
    lunch = app.call_tool("checkAvailability", {"startDateTime": "2031-03-11T12:00:00"})
    assert lunch["available"] is False and lunch["reason"] == "outsideHours"
    # Same day, nearest start first (11:30; then 11:00 and 13:00 tie, the earlier wins),
    # returned in time order.
    assert starts(lunch, "alternatives") == [
        "2031-03-11T11:00:00-04:00",
        "2031-03-11T11:30:00-04:00",
        "2031-03-11T13:00:00-04:00",
    ]
    window = app.call_tool(
        "checkAvailability",
        {"startDateTime": "2031-03-11T11:00:00", "endDateTime": "2031-03-11T14:00:00"},
    )
    assert starts(window) == [
        "2031-03-11T11:00:00-04:00",
        "2031-03-11T11:30:00-04:00",
        "2031-03-11T13:00:00-04:00",
        "2031-03-11T13:30:00-04:00",
    ]
    # Wednesday was left out of the replacement map, so it is closed.
    wednesday = app.call_tool("checkAvailability", {"startDateTime": "2031-03-12T10:00:00"})
    assert wednesday["reason"] == "closed"


def test_date_overrides_close_a_day_and_open_special_hours(app: App) -> None:
    set_rules(
        app,
        dateOverrides={
            "2031-03-11": [],  # a Tuesday, closed
            "2031-03-15": [{"start": "10:00", "end": "12:00"}],  # a Saturday, open
        },
    )
    closed = app.call_tool("checkAvailability", {"startDateTime": "2031-03-11T10:00:00"})
    assert closed["available"] is False and closed["reason"] == "closed"
    assert starts(closed, "alternatives")[0] == "2031-03-12T09:00:00-04:00"
    saturday = app.call_tool(
        "checkAvailability",
        {"startDateTime": "2031-03-15T08:00:00", "endDateTime": "2031-03-15T18:00:00"},
    )
    assert starts(saturday) == [
        "2031-03-15T10:00:00-04:00",
        "2031-03-15T10:30:00-04:00",
        "2031-03-15T11:00:00-04:00",
        "2031-03-15T11:30:00-04:00",
    ]
    booked = app.call_tool(
        "scheduleAppointment", {"startDateTime": "2031-03-15T11:00:00", "summary": "Sat"}
    )
    assert booked["booked"] is True


def test_slot_interval_and_default_duration(app: App) -> None:
    set_rules(app, slotIntervalMinutes=20, defaultDurationMinutes=60)
    result = app.call_tool(
        "checkAvailability",
        {"startDateTime": "2031-03-11T09:00:00", "endDateTime": "2031-03-11T11:00:00"},
    )
    assert result["durationMinutes"] == 60
    assert starts(result) == [
        "2031-03-11T09:00:00-04:00",
        "2031-03-11T09:20:00-04:00",
        "2031-03-11T09:40:00-04:00",
        "2031-03-11T10:00:00-04:00",
    ]
    booked = app.call_tool(
        "scheduleAppointment", {"startDateTime": "2031-03-11T14:00:00", "summary": "Long"}
    )
    assert booked["end"] == "2031-03-11T15:00:00-04:00"


# -- buffers ---------------------------------------------------------------------------------------


def test_buffers_apply_around_events_created_directly_in_google(app: App) -> None:
    set_rules(app, bufferBeforeMinutes=15, bufferAfterMinutes=15, slotIntervalMinutes=15)
    seed(app, "2031-03-11T10:00:00-04:00", "2031-03-11T11:00:00-04:00")  # not made by us
    result = app.call_tool(
        "checkAvailability",
        {"startDateTime": "2031-03-11T09:00:00", "endDateTime": "2031-03-11T12:00:00"},
    )
    # 9:15-9:45 leaves 15 minutes before the 10:00 event; 9:30 would not. After the event the
    # first slot is 11:15 (15 minutes after it ends).
    assert starts(result) == [
        "2031-03-11T09:00:00-04:00",
        "2031-03-11T09:15:00-04:00",
        "2031-03-11T11:15:00-04:00",
        "2031-03-11T11:30:00-04:00",
    ]
    tight = app.call_tool(
        "scheduleAppointment", {"startDateTime": "2031-03-11T11:00:00", "summary": "Cut"}
    )
    assert tight["booked"] is False and tight["reason"] == "busy"
    assert "2031-03-11T11:15:00-04:00" in starts(tight, "alternatives")
    assert len(live_events(app)) == 1


def test_buffers_also_keep_new_bookings_apart(app: App) -> None:
    set_rules(app, bufferAfterMinutes=30)
    first = app.call_tool(
        "scheduleAppointment",
        {"startDateTime": "2031-03-11T10:00:00", "summary": "A"},
        tool_call_id="b1",
    )
    assert first["booked"] is True
    # 9:30-10:00 would leave no time after it before 10:00; 10:30 is right after the booking.
    before = app.call_tool(
        "scheduleAppointment",
        {"startDateTime": "2031-03-11T09:30:00", "summary": "B"},
        tool_call_id="b2",
    )
    assert before["booked"] is False
    after = app.call_tool(
        "scheduleAppointment",
        {"startDateTime": "2031-03-11T10:30:00", "summary": "C"},
        tool_call_id="b3",
    )
    assert after["booked"] is True


# -- notice and horizon (relative to now, open every day so weekdays do not matter) -----------


def _soon(hours: int) -> datetime:
    """A whole hour at least `hours` from the server's now (UTC arithmetic, spoken in New York)."""
    moment = FROZEN_NOW + timedelta(hours=hours)
    return moment.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)


def test_minimum_notice_refuses_short_notice_and_offers_later_times(app: App) -> None:
    set_rules(app, workingHours=EVERY_DAY, minimumNoticeMinutes=24 * 60)
    soon = _soon(2)
    result = app.call_tool("checkAvailability", {"startDateTime": local(soon)})
    assert result["available"] is False and result["reason"] == "tooSoon"
    assert "24 hours notice" in result["message"] or "1 day notice" in result["message"]
    earliest = FROZEN_NOW + timedelta(hours=24)
    assert result["alternatives"]
    for alt in result["alternatives"]:
        assert datetime.fromisoformat(alt["start"]) >= earliest - timedelta(minutes=1)
    booking = app.call_tool("scheduleAppointment", {"startDateTime": local(soon), "summary": "x"})
    assert booking["booked"] is False and booking["reason"] == "tooSoon"
    assert live_events(app) == []
    later = app.call_tool(
        "scheduleAppointment",
        {"startDateTime": local(_soon(30)), "summary": "y"},
        tool_call_id="call_later",
    )
    assert later["booked"] is True


def test_booking_horizon_refuses_times_too_far_ahead(app: App) -> None:
    set_rules(app, workingHours=EVERY_DAY, bookingHorizonDays=10)
    far = app.call_tool("checkAvailability", {"startDateTime": local(_soon(24 * 20))})
    assert far["available"] is False and far["reason"] == "beyondHorizon"
    assert "10 days" in far["message"]
    assert far["alternatives"] == []
    booking = app.call_tool(
        "scheduleAppointment", {"startDateTime": local(_soon(24 * 20)), "summary": "x"}
    )
    assert booking["booked"] is False and booking["reason"] == "beyondHorizon"
    near = app.call_tool("checkAvailability", {"startDateTime": local(_soon(24 * 5))})
    assert near["available"] is True
    assert live_events(app) == []


# -- maximum bookings per day ----------------------------------------------------------------


def test_max_bookings_per_day_counts_only_our_bookings(app: App) -> None:
    set_rules(app, maxBookingsPerDay=2)
    seed(app, "2031-03-11T16:00:00-04:00", "2031-03-11T16:30:00-04:00")  # owner's own event
    for n, hour in enumerate(("09", "10")):
        booked = app.call_tool(
            "scheduleAppointment",
            {"startDateTime": f"2031-03-11T{hour}:00:00", "summary": f"#{n}"},
            tool_call_id=f"max{n}",
        )
        assert booked["booked"] is True
    app.emulator.control.reset_requests()
    third = app.call_tool(
        "scheduleAppointment",
        {"startDateTime": "2031-03-11T14:00:00", "summary": "third"},
        tool_call_id="max3",
    )
    assert third["booked"] is False and third["reason"] == "fullyBooked"
    assert all(s.startswith("2031-03-12") for s in starts(third, "alternatives"))
    assert app.emulator.control.requests() == {"freebusy": 1, "events.list": 1}
    check = app.call_tool("checkAvailability", {"startDateTime": "2031-03-11T15:00:00"})
    assert check["available"] is False and check["reason"] == "fullyBooked"
    other_day = app.call_tool("checkAvailability", {"startDateTime": "2031-03-12T15:00:00"})
    assert other_day["available"] is True
    assert len(live_events(app)) == 3


# -- calendars ---------------------------------------------------------------------------------


def test_several_busy_calendars_block_time_in_one_freebusy_query(app: App) -> None:
    app.emulator.control.add_calendar(CAL, "team@group.example.com")
    seed(app, "2031-03-11T10:00:00-04:00", "2031-03-11T11:00:00-04:00", "team@group.example.com")
    before = app.call_tool("checkAvailability", {"startDateTime": "2031-03-11T10:00:00"})
    assert before["available"] is True  # the team calendar is not a busy calendar yet

    set_rules(app, busyCalendarIds=["primary", "team@group.example.com"])
    app.emulator.control.reset_requests()
    after = app.call_tool("checkAvailability", {"startDateTime": "2031-03-11T10:00:00"})
    assert after["available"] is False and after["reason"] == "busy"
    assert app.emulator.control.requests() == {"freebusy": 1}


def test_booking_calendar_receives_events_and_blocks_time(app: App) -> None:
    app.emulator.control.add_calendar(CAL, "bookings@group.example.com")
    set_rules(app, bookingCalendarId="bookings@group.example.com")
    booked = app.call_tool(
        "scheduleAppointment", {"startDateTime": "2031-03-11T10:00:00", "summary": "Cut"}
    )
    assert booked["booked"] is True
    assert live_events(app) == []
    (event,) = live_events(app, "bookings@group.example.com")
    assert event["id"] == booked["eventId"]
    again = app.call_tool(
        "scheduleAppointment",
        {"startDateTime": "2031-03-11T10:00:00", "summary": "Cut"},
        tool_call_id="call_2",
    )
    assert again["booked"] is False and again["reason"] == "busy"


def test_google_meet_is_added_with_conference_data(app: App) -> None:
    set_rules(app, addGoogleMeet=True)
    booked = app.call_tool(
        "scheduleAppointment",
        {
            "startDateTime": "2031-03-11T10:00:00",
            "summary": "Consultation",
            "attendees": ["sam@example.com"],
        },
        tool_call_id="meet_1",
    )
    assert booked["booked"] is True
    (event,) = live_events(app)
    assert event["conferenceData"]["conferenceSolution"]["key"]["type"] == "hangoutsMeet"
    assert event["conferenceData"]["createRequest"]["requestId"] == event_id_for("ana", "meet_1")
    assert booked["meetLink"] == event["hangoutLink"]
    # Google starts a new guest's response as needsAction.
    assert event["attendees"] == [{"email": "sam@example.com", "responseStatus": "needsAction"}]


# -- DST edges -------------------------------------------------------------------------------------


def test_new_york_spring_forward_night_has_no_slots_in_the_gap(app: App) -> None:
    # 2031-03-09 is a Sunday; at 2:00 EST the clocks jump to 3:00 EDT.
    set_rules(app, workingHours={"sunday": [{"start": "01:00", "end": "04:00"}]})
    result = app.call_tool(
        "checkAvailability",
        {"startDateTime": "2031-03-09T00:00:00", "endDateTime": "2031-03-09T05:00:00"},
    )
    assert starts(result) == [
        "2031-03-09T01:00:00-05:00",
        "2031-03-09T01:30:00-05:00",
        "2031-03-09T03:00:00-04:00",
        "2031-03-09T03:30:00-04:00",
    ]
    spoken = [slot["spoken"] for slot in result["slots"]]
    assert spoken[1].endswith("1:30 AM EST") and spoken[2].endswith("3:00 AM EDT")
    # The Saturday before is closed; the alternatives cross the change in time order.
    saturday = app.call_tool("checkAvailability", {"startDateTime": "2031-03-08T10:00:00"})
    assert starts(saturday, "alternatives") == [
        "2031-03-09T01:00:00-05:00",
        "2031-03-09T01:30:00-05:00",
        "2031-03-09T03:00:00-04:00",
    ]


def test_berlin_fall_back_night_offers_the_repeated_hour_twice(app: App) -> None:
    app.create_user("bert", timezone="Europe/Berlin")
    app.link("asst_bert", "bert")
    app.connect_google("bert", "bert@example.com")
    set_rules(
        app,
        "bert",
        bookingHorizonDays=3650,
        workingHours={"sunday": [{"start": "01:00", "end": "04:00"}]},
    )
    # 2031-10-26 is a Sunday; at 3:00 CEST the clocks fall back to 2:00 CET.
    result = app.call_tool(
        "checkAvailability",
        {"startDateTime": "2031-10-26T00:00:00", "endDateTime": "2031-10-26T05:00:00"},
        assistant_id="asst_bert",
    )
    assert starts(result) == [
        "2031-10-26T01:00:00+02:00",
        "2031-10-26T01:30:00+02:00",
        "2031-10-26T02:00:00+02:00",
        "2031-10-26T02:30:00+02:00",
        "2031-10-26T02:00:00+01:00",
        "2031-10-26T02:30:00+01:00",
    ]
    spoken = [slot["spoken"] for slot in result["slots"]]
    assert spoken[3].endswith("2:30 AM CEST") and spoken[5].endswith("2:30 AM CET")
    # A naive 2:30 means the first one; an explicit offset picks the second.
    first = app.call_tool(
        "scheduleAppointment",
        {"startDateTime": "2031-10-26T02:30:00", "summary": "Early"},
        assistant_id="asst_bert",
        tool_call_id="dst_1",
    )
    second = app.call_tool(
        "scheduleAppointment",
        {"startDateTime": "2031-10-26T02:30:00+01:00", "summary": "Late"},
        assistant_id="asst_bert",
        tool_call_id="dst_2",
    )
    assert first["booked"] and first["start"] == "2031-10-26T02:30:00+02:00"
    assert second["booked"] and second["start"] == "2031-10-26T02:30:00+01:00"
    assert "CEST" in first["spoken"] and "CET" in second["spoken"]


def test_cli_set_rules_merges_and_validates(app: App, tmp_path: Any) -> None:
    import os
    import subprocess
    import sys

    settings = app.settings
    assert settings.encryption_key is not None
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("GOOGLE_", "DATABASE_"))},
        "DATABASE_URL": settings.database_url,
        "ENCRYPTION_KEY": settings.encryption_key.get_secret_value(),
        "GOOGLE_CLIENT_ID": "test-client.apps.googleusercontent.com",
        "GOOGLE_CLIENT_SECRET": "test-client-secret",
        "GOOGLE_EMULATOR_URL": app.emulator.url,
    }

    def set_rules_cli(rules: Any) -> subprocess.CompletedProcess[str]:
        path = tmp_path / "rules.json"
        path.write_text(json.dumps(rules))
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "vapi_calendar.server.cli",
                "set-rules",
                "ana",
                "--file",
                str(path),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    done = set_rules_cli({"maxBookingsPerDay": 3})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rules"]["maxBookingsPerDay"] == 3
    assert app.admin.get("/api/users/ana").json()["rules"]["bookingHorizonDays"] == 3650
    bad = set_rules_cli({"slotIntervalMinutes": 1})
    assert bad.returncode != 0 and "slotIntervalMinutes" in bad.stderr
    assert app.admin.get("/api/users/ana").json()["rules"]["slotIntervalMinutes"] == 30
