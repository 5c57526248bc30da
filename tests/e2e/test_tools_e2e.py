"""The whole path over real HTTP: webhook → user → credentials → tool → emulator → result."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import pytest

from tests.harness.app import App, tool_calls_message
from vapi_calendar.tools.appointments import CREATED_BY_KEY
from vapi_calendar.tools.booking import event_id_for

CAL = "ana@example.com"


def seed(app: App, start: str, end: str, **extra: str) -> None:
    app.emulator.control.seed_event(
        CAL,
        {"summary": "Busy", "start": {"dateTime": start}, "end": {"dateTime": end}, **extra},
    )


def instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def live_events(app: App) -> list[dict]:
    return [e for e in app.emulator.control.events(CAL) if e.get("status") != "cancelled"]


# -- checkAvailability -------------------------------------------------------------------------


def test_availability_sees_opaque_busy_but_not_transparent_or_cancelled(app: App) -> None:
    seed(app, "2031-03-11T10:00:00-04:00", "2031-03-11T11:00:00-04:00")
    seed(app, "2031-03-11T11:00:00-04:00", "2031-03-11T12:00:00-04:00", transparency="transparent")
    seed(app, "2031-03-11T09:00:00-04:00", "2031-03-11T09:30:00-04:00", status="cancelled")

    result = app.call_tool(
        "checkAvailability",
        {"startDateTime": "2031-03-11T09:00:00", "endDateTime": "2031-03-11T12:00:00"},
    )

    assert result["available"] is False
    assert result["timeZone"] == "America/New_York"
    starts = [slot["start"] for slot in result["slots"]]
    assert starts[0] == "2031-03-11T09:00:00-04:00"  # the cancelled event does not block
    assert "2031-03-11T11:00:00-04:00" in starts  # the transparent event does not block
    for slot in result["slots"]:  # nothing overlaps the opaque 10:00-11:00 block
        assert instant(slot["end"]) <= instant("2031-03-11T10:00:00-04:00") or instant(
            slot["start"]
        ) >= instant("2031-03-11T11:00:00-04:00")
    assert "Tuesday, March 11" in result["message"]
    assert app.emulator.control.requests().get("freebusy") == 1


def test_free_window_is_available_with_spoken_message(app: App) -> None:
    result = app.call_tool(
        "checkAvailability", {"startDateTime": "2031-03-11T15:00:00", "durationMinutes": 45}
    )
    assert result["available"] is True
    assert result["slots"][0] == {
        "start": "2031-03-11T15:00:00-04:00",
        "end": "2031-03-11T15:45:00-04:00",
        "spoken": result["slots"][0]["spoken"],
    }
    assert "3:00" in result["message"] and "EDT" in result["message"]
    assert "\n" not in json.dumps(result)


def test_fully_busy_window_offers_nearby_alternatives(app: App) -> None:
    seed(app, "2031-03-11T13:00:00-04:00", "2031-03-11T15:00:00-04:00")
    result = app.call_tool(
        "checkAvailability",
        {"startDateTime": "2031-03-11T13:30:00", "durationMinutes": 30},
    )
    assert result["available"] is False and result["slots"] == []
    assert 1 <= len(result["alternatives"]) <= 3
    busy = (instant("2031-03-11T13:00:00-04:00"), instant("2031-03-11T15:00:00-04:00"))
    for alt in result["alternatives"]:
        assert instant(alt["end"]) <= busy[0] or instant(alt["start"]) >= busy[1]
    assert app.emulator.control.requests().get("freebusy") == 1


# -- scheduleAppointment -----------------------------------------------------------------------


def test_booking_creates_one_tagged_event(app: App) -> None:
    result = app.call_tool(
        "scheduleAppointment",
        {
            "startDateTime": "2031-03-11T14:00:00",
            "durationMinutes": 30,
            "summary": "Haircut with Sam",
            "attendeeName": "Sam Lee",
            "attendeePhone": "+14155550123",
        },
        tool_call_id="call_book_1",
    )
    assert result["booked"] is True
    assert result["start"] == "2031-03-11T14:00:00-04:00"
    assert result["end"] == "2031-03-11T14:30:00-04:00"
    assert result["eventId"] == event_id_for("ana", "call_book_1")
    assert "Haircut with Sam" in result["message"]

    (event,) = live_events(app)
    assert event["id"] == result["eventId"]
    assert event["extendedProperties"]["private"][CREATED_BY_KEY] == "1"
    assert event["extendedProperties"]["private"]["toolCallId"] == "call_book_1"
    assert instant(event["start"]["dateTime"]) == instant("2031-03-11T18:00:00Z")
    assert "Sam Lee" in event["description"]
    counts = app.emulator.control.requests()
    assert counts.get("freebusy") == 1 and counts.get("events.insert") == 1


def test_booking_a_taken_slot_offers_alternatives_and_creates_nothing(app: App) -> None:
    seed(app, "2031-03-11T14:00:00-04:00", "2031-03-11T15:00:00-04:00")
    result = app.call_tool(
        "scheduleAppointment",
        {"startDateTime": "2031-03-11T14:15:00", "durationMinutes": 30, "summary": "Cut"},
    )
    assert result["booked"] is False
    assert 1 <= len(result["alternatives"]) <= 3
    for alt in result["alternatives"]:
        assert instant(alt["end"]) <= instant("2031-03-11T14:00:00-04:00") or instant(
            alt["start"]
        ) >= instant("2031-03-11T15:00:00-04:00")
    assert len(live_events(app)) == 1  # only the seeded one
    assert app.emulator.control.requests().get("events.insert", 0) == 0


def test_replayed_tool_call_id_books_once(app: App) -> None:
    body = tool_calls_message(
        [("call_dup", "scheduleAppointment", {"startDateTime": "2031-03-12T10:00:00"})]
    )
    first = app.results(body)
    again = app.results(body)
    assert first == again
    assert json.loads(first[0]["result"])["booked"] is True
    assert len(live_events(app)) == 1


def test_concurrent_deliveries_of_one_call_book_once(app: App) -> None:
    body = tool_calls_message(
        [("call_race", "scheduleAppointment", {"startDateTime": "2031-03-12T11:00:00"})]
    )
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(lambda _: app.results(body), range(6)))
    booked = [json.loads(a[0]["result"]) for a in answers]
    assert all(b["booked"] for b in booked), booked
    assert {b["eventId"] for b in booked} == {event_id_for("ana", "call_race")}
    assert len(live_events(app)) == 1


def test_retry_after_timed_out_insert_answers_from_the_existing_event(tmp_path, emulator) -> None:
    """Vapi gives up (our budget runs out) while Google still inserts; the retry must not
    book twice, nor report the slot as taken by its own first attempt."""
    import httpx

    from tests.harness.app import app_settings
    from tests.harness.servers import serve_in_thread
    from vapi_calendar.server.app import create_app

    settings = app_settings(tmp_path, emulator.url, tool_budget_seconds=1.0)
    with serve_in_thread(create_app(settings)) as url, httpx.Client(timeout=30) as http:
        slow = App(url, settings, emulator, http)
        slow.create_user("ana")
        slow.admin.patch("/api/users/ana", json={"rules": {"bookingHorizonDays": 3650}})
        slow.link("asst_ana_haircuts", "ana")
        slow.connect_google("ana", CAL)
        emulator.control.add_fault("events.insert", latency_ms=1500)
        args = {"startDateTime": "2031-03-13T10:00:00", "summary": "Trim"}
        first = slow.call_tool("scheduleAppointment", args, tool_call_id="call_slow")
        assert "too long" in first["error"]
        emulator.control.clear_faults()
        import time

        time.sleep(1.0)  # the first insert lands at the emulator meanwhile
        second = slow.call_tool("scheduleAppointment", args, tool_call_id="call_slow")
        assert second["booked"] is True
        assert second["eventId"] == event_id_for("ana", "call_slow")
        assert len(live_events(slow)) == 1


# -- times ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "expected_local"),
    [
        # Before the 2031-03-09 spring-forward in New York: EST (-05:00).
        ("2031-03-08T10:00:00", "2031-03-08T10:00:00-05:00"),
        # After it: EDT (-04:00); the same wall time is an hour earlier in UTC.
        ("2031-03-10T10:00:00", "2031-03-10T10:00:00-04:00"),
        # An explicit offset is an instant, spoken in the user's zone.
        ("2031-03-10T10:00:00-05:00", "2031-03-10T11:00:00-04:00"),
        # Z is UTC, literally.
        ("2031-03-10T14:00:00Z", "2031-03-10T10:00:00-04:00"),
        ("2031-03-08T15:00:00Z", "2031-03-08T10:00:00-05:00"),
    ],
)
def test_offset_naive_and_z_inputs_across_dst(app: App, sent: str, expected_local: str) -> None:
    result = app.call_tool("checkAvailability", {"startDateTime": sent})
    assert result["requested"]["start"] == expected_local


def test_caller_time_zone_reads_naive_times(app: App) -> None:
    result = app.call_tool(
        "checkAvailability",
        {"startDateTime": "2031-03-10T09:00:00", "timeZone": "America/Los_Angeles"},
    )
    assert result["requested"]["start"] == "2031-03-10T12:00:00-04:00"


def test_nonexistent_local_time_in_dst_gap_is_refused(app: App) -> None:
    result = app.call_tool("checkAvailability", {"startDateTime": "2031-03-09T02:30:00"})
    assert "daylight" in result["error"].lower()
    assert app.emulator.control.requests().get("freebusy", 0) == 0


def test_past_times_are_refused(app: App) -> None:
    result = app.call_tool(
        "scheduleAppointment", {"startDateTime": "2020-01-07T10:00:00", "summary": "x"}
    )
    assert "passed" in result["error"]
    assert live_events(app) == []


def test_missing_argument_names_the_field(app: App) -> None:
    result = app.call_tool("checkAvailability", {"endDateTime": "2031-03-10T09:00:00"})
    assert "startDateTime" in result["error"]


# -- whose calendar --------------------------------------------------------------------------


def test_unlinked_assistant_gets_a_clear_error(app: App) -> None:
    result = app.call_tool(
        "checkAvailability", {"startDateTime": "2031-03-11T09:00:00"}, assistant_id="asst_nobody"
    )
    assert "not linked to a user" in result["error"]
    assert app.emulator.control.requests() == {}


def test_override_metadata_beats_the_assistant_link(app: App) -> None:
    app.create_user("bob", timezone="Europe/Berlin")
    app.link("asst_bob", "bob")
    app.connect_google("bob", "bob@example.com")
    # The call comes from Bob's assistant, but the integrator's per-call override says Ana
    # (with her call token, as the integrator's backend sets it).
    metadata = {"userId": "ana", "userToken": app.call_token("ana")}
    result = app.call_tool(
        "checkAvailability",
        {"startDateTime": "2031-03-11T09:00:00"},
        assistant_id="asst_bob",
        call={"assistantOverrides": {"metadata": metadata}},
    )
    assert result["timeZone"] == "America/New_York"


def test_llm_arguments_cannot_choose_the_user(app: App) -> None:
    result = app.call_tool(
        "checkAvailability",
        {"startDateTime": "2031-03-11T09:00:00", "userId": "bob", "calendarId": "bob@x.com"},
    )
    assert result["timeZone"] == "America/New_York"


def test_two_calls_in_one_message_answer_in_order(app: App) -> None:
    body = tool_calls_message(
        [
            ("c1", "checkAvailability", {"startDateTime": "2031-03-12T09:00:00"}),
            ("c2", "nonexistentTool", {}),
            ("c3", "checkAvailability", {"startDateTime": "2031-03-13T09:00:00"}),
        ]
    )
    results = app.results(body)
    assert [r["toolCallId"] for r in results] == ["c1", "c2", "c3"]
    assert "not available" in results[1]["error"]
    assert json.loads(results[2]["result"])["requested"]["start"].startswith("2031-03-13")
