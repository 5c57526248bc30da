"""Callers reach only their own appointments (issue #11, `appointmentAccess`).

With the default `caller`, find / reschedule / cancel see only appointments booked from the
number the call comes from, or earlier in the same call; a number, email or event id the caller
says can narrow that, never widen it, and every refusal is the same neutral "not found".
`anyone` keeps the old behaviour for staff lines.
"""

from __future__ import annotations

from typing import Any

from tests.harness.app import App

BOB = {"id": "call-bob", "type": "inboundPhoneCall", "customer": {"number": "+14155550123"}}
BOB_AGAIN = {"id": "call-bob-2", "type": "inboundPhoneCall", "customer": {"number": "+14155550123"}}
MALLORY = {"id": "call-mallory", "type": "inboundPhoneCall", "customer": {"number": "+12125550000"}}
WEB = {"id": "web-1", "type": "webCall"}
OTHER_WEB = {"id": "web-2", "type": "webCall"}
NOT_FOUND = "I could not find that appointment."


def book(app: App, start: str, tool_call_id: str, call: dict[str, Any]) -> str:
    result = app.call_tool(
        "scheduleAppointment",
        {"startDateTime": start, "summary": "Haircut"},
        tool_call_id=tool_call_id,
        call=call,
    )
    assert result["booked"] is True, result
    return str(result["eventId"])


def find(app: App, tool_call_id: str, call: dict[str, Any], **arguments: str) -> list[str]:
    found = app.call_tool("findAppointments", arguments, tool_call_id=tool_call_id, call=call)
    assert "appointments" in found, found
    return [a["eventId"] for a in found["appointments"]]


def test_another_caller_cannot_find_move_or_cancel_an_appointment(app: App) -> None:
    bobs = book(app, "2031-03-11T10:00:00", "b1", BOB)

    assert find(app, "m1", MALLORY) == []
    assert find(app, "m2", MALLORY, attendeePhone="+1 415 555 0123") == []  # cannot widen
    moved = app.call_tool(
        "rescheduleAppointment",
        {"eventId": bobs, "startDateTime": "2031-03-12T10:00:00"},
        tool_call_id="m3",
        call=MALLORY,
    )
    cancelled = app.call_tool(
        "cancelAppointment", {"eventId": bobs}, tool_call_id="m4", call=MALLORY
    )
    assert moved == {"error": NOT_FOUND} and cancelled == {"error": NOT_FOUND}
    (event,) = [e for e in app.emulator.control.events("ana@example.com") if e["id"] == bobs]
    assert event["status"] != "cancelled" and event["start"]["dateTime"].startswith("2031-03-11T10")

    # Bob, calling again from his number, reaches it.
    assert find(app, "b2", BOB_AGAIN) == [bobs]
    done = app.call_tool("cancelAppointment", {"eventId": bobs}, tool_call_id="b3", call=BOB_AGAIN)
    assert done["cancelled"] is True


def test_a_number_or_email_the_caller_gives_only_narrows(app: App) -> None:
    mine = book(app, "2031-03-11T10:00:00", "b1", BOB)
    app.call_tool(
        "scheduleAppointment",
        {
            "startDateTime": "2031-03-11T11:00:00",
            "summary": "For my partner",
            "attendeePhone": "+1 650 555 0100",
        },
        tool_call_id="b2",
        call=BOB,
    )
    everything = find(app, "b3", BOB_AGAIN)
    assert len(everything) == 2 and mine in everything
    assert find(app, "b4", BOB_AGAIN, attendeePhone="+1 650-555-0100") == [
        e for e in everything if e != mine
    ]


def test_a_web_call_without_a_number_reaches_only_its_own_bookings(app: App) -> None:
    booked_here = book(app, "2031-03-11T10:00:00", "w1", WEB)
    book(app, "2031-03-11T11:00:00", "b1", BOB)

    assert find(app, "w2", WEB) == [booked_here]
    assert find(app, "o1", OTHER_WEB) == []
    moved = app.call_tool(
        "rescheduleAppointment",
        {"eventId": booked_here, "startDateTime": "2031-03-11T15:00:00"},
        tool_call_id="w3",
        call=WEB,
    )
    assert moved["rescheduled"] is True
    other = app.call_tool(
        "cancelAppointment", {"eventId": booked_here}, tool_call_id="o2", call=OTHER_WEB
    )
    assert other == {"error": NOT_FOUND}


def test_a_staff_line_may_reach_anyone_by_number(app: App) -> None:
    app.admin.patch("/api/users/ana", json={"rules": {"appointmentAccess": "anyone"}})
    bobs = book(app, "2031-03-11T10:00:00", "b1", BOB)
    staff = {"id": "staff-call", "customer": {"number": "+13105550000"}}
    assert find(app, "s1", staff, attendeePhone="+1 415 555 0123") == [bobs]
    done = app.call_tool("cancelAppointment", {"eventId": bobs}, tool_call_id="s2", call=staff)
    assert done["cancelled"] is True


def test_the_rule_is_shown_and_validated(app: App) -> None:
    rules = app.admin.get("/api/users/ana").json()["rules"]
    assert rules["appointmentAccess"] == "caller"
    bad = app.admin.patch("/api/users/ana", json={"rules": {"appointmentAccess": "everyone"}})
    assert bad.status_code == 400 and "appointmentAccess" in bad.json()["error"]
