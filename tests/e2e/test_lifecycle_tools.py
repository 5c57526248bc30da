"""find / reschedule / cancel over real HTTP, and the booking race under the calendar lock."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.harness.app import App, tool_calls_message

CAL = "ana@example.com"
CALLER = {"customer": {"number": "+14155550123"}, "type": "inboundPhoneCall"}


def live_events(app: App) -> list[dict]:
    return [e for e in app.emulator.control.events(CAL) if e.get("status") != "cancelled"]


def book(
    app: App, start: str, tool_call_id: str, *, call: dict | None = None, **extra: Any
) -> dict[str, Any]:
    result = app.call_tool(
        "scheduleAppointment",
        {"startDateTime": start, "summary": "Haircut", **extra},
        tool_call_id=tool_call_id,
        call=CALLER if call is None else call,
    )
    assert result["booked"] is True, result
    return result


# -- the race ----------------------------------------------------------------------------------


def test_twenty_simultaneous_bookings_of_one_slot_make_exactly_one_event(app: App) -> None:
    def attempt(n: int) -> dict[str, Any]:
        body = tool_calls_message(
            [(f"race_{n}", "scheduleAppointment", {"startDateTime": "2031-03-11T14:00:00"})]
        )
        (result,) = app.results(body)
        return json.loads(result["result"])

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(attempt, range(20)))

    winners = [a for a in answers if a["booked"]]
    losers = [a for a in answers if not a["booked"]]
    assert len(winners) == 1 and len(losers) == 19
    (event,) = live_events(app)
    assert event["id"] == winners[0]["eventId"]
    for loser in losers:
        assert loser["reason"] == "busy"
        assert 1 <= len(loser["alternatives"]) <= 3
        assert "2031-03-11T14:00:00-04:00" not in [a["start"] for a in loser["alternatives"]]
    assert app.emulator.control.requests()["events.insert"] == 1


# -- findAppointments ----------------------------------------------------------------------------


def test_find_uses_the_callers_number_from_the_call(app: App) -> None:
    first = book(app, "2031-03-12T10:00:00", "f1")
    second = book(app, "2031-03-11T15:00:00", "f2")
    # Someone else's booking (another call, another number), and an event the owner made
    # directly, must not show up.
    app.call_tool(
        "scheduleAppointment",
        {"startDateTime": "2031-03-13T10:00:00", "summary": "Other"},
        tool_call_id="f3",
        call={"id": "someone-elses-call", "customer": {"number": "+12125550000"}},
    )
    app.emulator.control.seed_event(
        CAL,
        {
            "summary": "Dentist",
            "start": {"dateTime": "2031-03-14T10:00:00-04:00"},
            "end": {"dateTime": "2031-03-14T11:00:00-04:00"},
            "extendedProperties": {"private": {"attendeePhone": "+14155550123"}},
        },
    )
    app.emulator.control.reset_requests()
    found = app.call_tool("findAppointments", {}, tool_call_id="find_1", call=CALLER)
    assert [a["eventId"] for a in found["appointments"]] == [second["eventId"], first["eventId"]]
    appointment = found["appointments"][0]
    assert appointment == {
        "eventId": second["eventId"],
        "start": "2031-03-11T15:00:00-04:00",
        "end": "2031-03-11T15:30:00-04:00",
        "summary": "Haircut",
        "spoken": "Tuesday, March 11, 2031 at 3:00 PM EDT",
    }
    assert found["count"] == 2 and "2 appointments" in found["message"]
    assert app.emulator.control.requests() == {"events.list": 1}


def test_find_by_a_spoken_phone_number_or_email(app: App) -> None:
    booked = book(
        app,
        "2031-03-12T10:00:00",
        "g1",
        attendeePhone="(415) 555-0199",
        attendees=["sam@example.com"],
    )
    by_phone = app.call_tool("findAppointments", {"attendeePhone": "415 555 0199"}, call={})
    assert [a["eventId"] for a in by_phone["appointments"]] == [booked["eventId"]]
    by_email = app.call_tool(
        "findAppointments", {"attendeeEmail": "SAM@example.com"}, tool_call_id="g2", call={}
    )
    assert [a["eventId"] for a in by_email["appointments"]] == [booked["eventId"]]
    nobody = app.call_tool(
        "findAppointments", {"attendeePhone": "+1 999 555 0000"}, tool_call_id="g3"
    )
    assert nobody["appointments"] == [] and "no upcoming" in nobody["message"]


def test_find_without_any_way_to_identify_the_caller_refuses_on_a_staff_line(app: App) -> None:
    app.admin.patch("/api/users/ana", json={"rules": {"appointmentAccess": "anyone"}})
    book(app, "2031-03-12T10:00:00", "h1")
    result = app.call_tool("findAppointments", {}, tool_call_id="h2", call={"id": "web-2"})
    assert "phone number or email" in result["error"]


def test_find_within_a_range(app: App) -> None:
    book(app, "2031-03-11T10:00:00", "r1")
    later = book(app, "2031-03-13T10:00:00", "r2")
    found = app.call_tool(
        "findAppointments",
        {"startDateTime": "2031-03-12T00:00:00", "endDateTime": "2031-03-14T00:00:00"},
        tool_call_id="r3",
        call=CALLER,
    )
    assert [a["eventId"] for a in found["appointments"]] == [later["eventId"]]


# -- rescheduleAppointment -------------------------------------------------------------------


def test_reschedule_moves_the_event_in_place(app: App) -> None:
    booked = book(app, "2031-03-11T10:00:00", "m1")
    app.emulator.control.reset_requests()
    moved = app.call_tool(
        "rescheduleAppointment",
        {"eventId": booked["eventId"], "startDateTime": "2031-03-12T15:00:00"},
        tool_call_id="m2",
    )
    assert moved["rescheduled"] is True
    assert moved["start"] == "2031-03-12T15:00:00-04:00"
    assert moved["end"] == "2031-03-12T15:30:00-04:00"  # the length is kept
    assert moved["previousStart"] == "2031-03-11T10:00:00-04:00"
    assert "Wednesday, March 12" in moved["message"]
    (event,) = live_events(app)
    assert event["id"] == booked["eventId"]
    assert event["start"]["dateTime"] == "2031-03-12T15:00:00-04:00"
    assert app.emulator.control.requests() == {
        "events.get": 1,
        "freebusy": 1,
        "events.patch": 1,
    }


def test_reschedule_into_an_overlap_with_its_own_old_time(app: App) -> None:
    booked = book(app, "2031-03-11T10:00:00", "o1", durationMinutes=60)
    moved = app.call_tool(
        "rescheduleAppointment",
        {"eventId": booked["eventId"], "startDateTime": "2031-03-11T10:30:00"},
        tool_call_id="o2",
    )
    assert moved["rescheduled"] is True and moved["end"] == "2031-03-11T11:30:00-04:00"


def test_reschedule_conflict_changes_nothing_and_offers_alternatives(app: App) -> None:
    booked = book(app, "2031-03-11T10:00:00", "c1")
    app.emulator.control.seed_event(
        CAL,
        {
            "summary": "Busy",
            "start": {"dateTime": "2031-03-11T14:00:00-04:00"},
            "end": {"dateTime": "2031-03-11T15:00:00-04:00"},
        },
    )
    before = {e["id"]: e for e in app.emulator.control.events(CAL)}
    app.emulator.control.reset_requests()
    result = app.call_tool(
        "rescheduleAppointment",
        {"eventId": booked["eventId"], "startDateTime": "2031-03-11T14:30:00"},
        tool_call_id="c2",
    )
    assert result["rescheduled"] is False and result["reason"] == "busy"
    assert 1 <= len(result["alternatives"]) <= 3
    assert "stays on Tuesday, March 11" in result["message"]
    assert {e["id"]: e for e in app.emulator.control.events(CAL)} == before
    assert "events.patch" not in app.emulator.control.requests()


def test_reschedule_outside_hours_is_refused_without_a_write(app: App) -> None:
    booked = book(app, "2031-03-11T10:00:00", "w1")
    result = app.call_tool(
        "rescheduleAppointment",
        {"eventId": booked["eventId"], "startDateTime": "2031-03-15T10:00:00"},  # Saturday
        tool_call_id="w2",
    )
    assert result["rescheduled"] is False and result["reason"] == "closed"
    assert app.emulator.control.requests().get("events.patch", 0) == 0


def test_lifecycle_tools_never_touch_events_they_did_not_create(app: App) -> None:
    foreign = app.emulator.control.seed_event(
        CAL,
        {
            "summary": "Owner's own",
            "start": {"dateTime": "2031-03-11T10:00:00-04:00"},
            "end": {"dateTime": "2031-03-11T11:00:00-04:00"},
        },
    )
    for name, args in (
        ("rescheduleAppointment", {"startDateTime": "2031-03-12T10:00:00"}),
        ("cancelAppointment", {}),
    ):
        for event_id in (foreign["id"], "doesnotexist0", "not a valid id!"):
            result = app.call_tool(
                name, {"eventId": event_id, **args}, tool_call_id=name + event_id
            )
            assert result == {"error": "I could not find that appointment."}
    (event,) = live_events(app)
    assert event["start"]["dateTime"] == "2031-03-11T10:00:00-04:00"


# -- cancelAppointment -----------------------------------------------------------------------


def test_cancel_twice_is_a_success_both_times(app: App) -> None:
    booked = book(app, "2031-03-11T10:00:00", "x1")
    first = app.call_tool("cancelAppointment", {"eventId": booked["eventId"]}, tool_call_id="x2")
    assert first["cancelled"] is True and first["alreadyCancelled"] is False
    assert first["start"] == "2031-03-11T10:00:00-04:00"
    assert live_events(app) == []
    second = app.call_tool("cancelAppointment", {"eventId": booked["eventId"]}, tool_call_id="x3")
    assert second["cancelled"] is True and second["alreadyCancelled"] is True
    assert "already cancelled" in second["message"]
    # The freed time is bookable again.
    again = app.call_tool(
        "scheduleAppointment",
        {"startDateTime": "2031-03-11T10:00:00", "summary": "Again"},
        tool_call_id="x4",
    )
    assert again["booked"] is True


def test_lifecycle_answers_are_idempotent_by_tool_call_id(app: App) -> None:
    booked = book(app, "2031-03-11T10:00:00", "i1")
    args = {"eventId": booked["eventId"], "startDateTime": "2031-03-11T11:00:00"}
    body = tool_calls_message([("i2", "rescheduleAppointment", args)])
    first = app.results(body)
    app.emulator.control.reset_requests()
    again = app.results(body)
    assert first == again
    assert app.emulator.control.requests() == {}  # answered from the store
    cancel = tool_calls_message([("i3", "cancelAppointment", {"eventId": booked["eventId"]})])
    assert app.results(cancel) == app.results(cancel)
    assert json.loads(app.results(cancel)[0]["result"])["alreadyCancelled"] is False
