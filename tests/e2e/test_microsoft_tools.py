"""All five tools on a Microsoft 365 / Outlook user, over real HTTP to the Graph emulator.

The same guarantees as on Google: one event per booking however often Vapi delivers it (and
whoever else books the slot at the same time), a reschedule that is one write or nothing,
callers who reach only their own appointments, and every answer within the call's budget.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tests.harness.app import (
    FROZEN_NOW,
    App,
    Emulator,
    bookable_slots,
    microsoft_settings,
    running_app,
    tool_calls_message,
)
from vapi_calendar.providers.microsoft.calendar import ID_PROPERTY, TAGS_PROPERTY
from vapi_calendar.tools.booking import event_id_for
from vapi_calendar.tools.errors import CalendarUnavailable

MAILBOX = "ana@contoso.com"
ZONE = "Eastern Standard Time"
CALLER = {"customer": {"number": "+14155550123"}, "type": "inboundPhoneCall"}
MALLORY = {"id": "call-mallory", "type": "inboundPhoneCall", "customer": {"number": "+12125550000"}}
NOT_FOUND = "I could not find that appointment."


def seed(app: App, start: str, end: str, **extra: Any) -> dict[str, Any]:
    """An event Ana made in Outlook (wall times in New York)."""
    body = {
        "subject": "Busy",
        "start": {"dateTime": start, "timeZone": ZONE},
        "end": {"dateTime": end, "timeZone": ZONE},
        **extra,
    }
    return app.emulator.microsoft.seed_event(MAILBOX, body)


def in_calendar(app: App) -> list[dict[str, Any]]:
    """Events still in Ana's calendar (not in Deleted Items)."""
    return [
        e
        for e in app.emulator.microsoft.events(MAILBOX)
        if e["folder"] not in ("deleteditems", "gone")
    ]


def tags(event: dict[str, Any]) -> dict[str, str]:
    props = {p["id"]: p["value"] for p in event["singleValueExtendedProperties"]}
    return json.loads(props[TAGS_PROPERTY])


def our_id(event: dict[str, Any]) -> str:
    return {p["id"]: p["value"] for p in event["singleValueExtendedProperties"]}[ID_PROPERTY]


def book(app: App, start: str, tool_call_id: str, **extra: Any) -> dict[str, Any]:
    call = extra.pop("call", CALLER)
    result = app.call_tool(
        "scheduleAppointment",
        {"startDateTime": start, "summary": "Haircut", **extra},
        tool_call_id=tool_call_id,
        call=call,
    )
    assert result["booked"] is True, result
    return result


# -- checkAvailability -------------------------------------------------------------------------


def test_availability_counts_busy_tentative_and_out_of_office_only(outlook: App) -> None:
    seed(outlook, "2031-03-11T09:00:00", "2031-03-11T09:30:00", showAs="free")
    seed(outlook, "2031-03-11T10:00:00", "2031-03-11T11:00:00")
    seed(outlook, "2031-03-11T11:00:00", "2031-03-11T12:00:00", showAs="workingElsewhere")
    seed(outlook, "2031-03-11T13:00:00", "2031-03-11T13:30:00", showAs="tentative")
    seed(outlook, "2031-03-11T14:00:00", "2031-03-11T14:30:00", isCancelled=True)

    result = outlook.call_tool(
        "checkAvailability",
        {"startDateTime": "2031-03-11T09:00:00", "endDateTime": "2031-03-11T15:00:00"},
    )

    assert result["available"] is False and result["timeZone"] == "America/New_York"
    starts = [slot["start"] for slot in result["slots"]]
    assert starts[0] == "2031-03-11T09:00:00-04:00"  # shown as free
    assert "2031-03-11T11:00:00-04:00" in starts  # working elsewhere
    assert "2031-03-11T10:00:00-04:00" not in starts  # busy
    assert outlook.emulator.microsoft.requests() == {"graph.calendarView": 1}


# -- scheduleAppointment -----------------------------------------------------------------------


def test_booking_creates_one_tagged_event_in_outlook(outlook: App) -> None:
    result = outlook.call_tool(
        "scheduleAppointment",
        {
            "startDateTime": "2031-03-11T14:00:00",
            "durationMinutes": 30,
            "summary": "Haircut with Sam",
            "attendeeName": "Sam Lee",
            "attendees": ["sam@example.com"],
        },
        tool_call_id="call_book_1",
        call=CALLER,
    )
    assert result["booked"] is True
    assert (result["start"], result["end"]) == (
        "2031-03-11T14:00:00-04:00",
        "2031-03-11T14:30:00-04:00",
    )
    # The tools' own id, the same on every provider: Graph's id stays behind the adapter.
    assert result["eventId"] == event_id_for("ana", "call_book_1")

    (event,) = in_calendar(outlook)
    assert our_id(event) == result["eventId"] and event["transactionId"] == result["eventId"]
    assert tags(event)["vapiCalendar"] == "1" and tags(event)["toolCallId"] == "call_book_1"
    assert tags(event)["callerNumber"] == "+14155550123"
    assert event["start"] == {"dateTime": "2031-03-11T18:00:00.0000000", "timeZone": "UTC"}
    assert event["subject"] == "Haircut with Sam" and "Sam Lee" in event["body"]["content"]
    assert [a["emailAddress"]["address"] for a in event["attendees"]] == ["sam@example.com"]
    assert outlook.emulator.microsoft.requests() == {
        "graph.calendarView": 1,
        "graph.events.create": 1,
    }


def test_an_online_meeting_rule_adds_a_teams_link(outlook: App) -> None:
    outlook.admin.patch("/api/users/ana", json={"rules": {"addOnlineMeeting": True}})
    result = book(outlook, "2031-03-11T15:00:00", "call_teams")
    assert result["meetLink"].startswith("https://teams.microsoft.com/l/meetup-join/")
    (event,) = in_calendar(outlook)
    assert event["isOnlineMeeting"] and event["onlineMeetingProvider"] == "teamsForBusiness"


def test_a_redelivered_booking_books_once(outlook: App) -> None:
    body = tool_calls_message(
        [("call_dup", "scheduleAppointment", {"startDateTime": "2031-03-12T10:00:00"})]
    )
    first = outlook.results(body)
    assert outlook.results(body) == first
    assert json.loads(first[0]["result"])["booked"] is True
    assert len(in_calendar(outlook)) == 1


def test_concurrent_deliveries_of_one_call_book_once(outlook: App) -> None:
    body = tool_calls_message(
        [("call_race", "scheduleAppointment", {"startDateTime": "2031-03-12T11:00:00"})]
    )
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(lambda _: outlook.results(body), range(6)))
    booked = [json.loads(a[0]["result"]) for a in answers]
    assert all(b["booked"] for b in booked), booked
    assert {b["eventId"] for b in booked} == {event_id_for("ana", "call_race")}
    assert len(in_calendar(outlook)) == 1


def test_twenty_simultaneous_bookings_of_one_slot_make_exactly_one_event(outlook: App) -> None:
    def attempt(n: int) -> dict[str, Any]:
        body = tool_calls_message(
            [(f"race_{n}", "scheduleAppointment", {"startDateTime": "2031-03-11T14:00:00"})]
        )
        (result,) = outlook.results(body)
        return json.loads(result["result"])

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(attempt, range(20)))

    winners = [a for a in answers if a["booked"]]
    losers = [a for a in answers if not a["booked"]]
    assert len(winners) == 1 and len(losers) == 19
    (event,) = in_calendar(outlook)
    assert our_id(event) == winners[0]["eventId"]
    for loser in losers:
        assert loser["reason"] == "busy"
        assert "2031-03-11T14:00:00-04:00" not in [a["start"] for a in loser["alternatives"]]
    assert outlook.emulator.microsoft.requests()["graph.events.create"] == 1


def test_a_retry_after_a_timed_out_create_answers_from_the_event_graph_made(
    tmp_path: Path, emulator: Emulator
) -> None:
    """The budget runs out while Graph still creates the event; the redelivery finds it by
    our id and answers from it — no second event, and its own first attempt does not make
    the slot look taken."""
    overrides = {**microsoft_settings(emulator.url), "tool_budget_seconds": 1.0}
    with running_app(tmp_path, emulator, **overrides) as slow:
        slow.set_up_ana_on_outlook()
        emulator.microsoft.add_fault("graph.events.create", latency_ms=1500)
        args = {"startDateTime": "2031-03-13T10:00:00", "summary": "Trim"}
        first = slow.call_tool("scheduleAppointment", args, tool_call_id="call_slow")
        assert "too long" in first["error"]
        deadline = time.monotonic() + 10
        while not in_calendar(slow) and time.monotonic() < deadline:
            time.sleep(0.05)  # the first create lands at the emulator meanwhile
        second = slow.call_tool("scheduleAppointment", args, tool_call_id="call_slow")
        assert second["booked"] is True
        assert second["eventId"] == event_id_for("ana", "call_slow")
        assert len(in_calendar(slow)) == 1


# -- find, reschedule, cancel ----------------------------------------------------------------------


def test_find_reschedule_and_cancel_an_outlook_appointment(outlook: App) -> None:
    booked = book(outlook, "2031-03-11T10:00:00", "l1", attendees=["sam@example.com"])
    seed(outlook, "2031-03-11T13:00:00", "2031-03-11T14:00:00")  # Ana's own, never reached

    found = outlook.call_tool("findAppointments", {}, tool_call_id="l2", call=CALLER)
    assert [a["eventId"] for a in found["appointments"]] == [booked["eventId"]]

    outlook.emulator.microsoft.reset_requests()
    moved = outlook.call_tool(
        "rescheduleAppointment",
        {"eventId": booked["eventId"], "startDateTime": "2031-03-11T11:00:00"},
        tool_call_id="l3",
        call=CALLER,
    )
    assert moved["rescheduled"] is True and moved["start"] == "2031-03-11T11:00:00-04:00"
    assert moved["eventId"] == booked["eventId"]
    # One write moved it: the old time is free and the new one taken at once.
    assert outlook.emulator.microsoft.requests()["graph.events.update"] == 1
    (event,) = [e for e in in_calendar(outlook) if e["subject"] == "Haircut"]
    assert event["start"]["dateTime"].startswith("2031-03-11T15:00:00")

    conflict = outlook.call_tool(
        "rescheduleAppointment",
        {"eventId": booked["eventId"], "startDateTime": "2031-03-11T13:00:00"},
        tool_call_id="l4",
        call=CALLER,
    )
    assert conflict["rescheduled"] is False and conflict["reason"] == "busy"
    (unchanged,) = [e for e in in_calendar(outlook) if e["subject"] == "Haircut"]
    assert unchanged["start"] == event["start"]

    cancelled = outlook.call_tool(
        "cancelAppointment", {"eventId": booked["eventId"]}, tool_call_id="l5", call=CALLER
    )
    assert cancelled["cancelled"] is True and cancelled["alreadyCancelled"] is False
    assert [e["subject"] for e in in_calendar(outlook)] == ["Busy"]
    # With attendees, the meeting was cancelled through /cancel, so Sam hears of it.
    assert outlook.emulator.microsoft.requests()["graph.events.cancel"] == 1
    # Redelivered, the same answer; the time is bookable again.
    again = outlook.call_tool(
        "cancelAppointment", {"eventId": booked["eventId"]}, tool_call_id="l5", call=CALLER
    )
    assert again == cancelled
    assert book(outlook, "2031-03-11T11:00:00", "l6")["booked"] is True


def test_a_cancelled_outlook_appointment_is_gone_for_a_new_call(outlook: App) -> None:
    """Graph moves a cancelled appointment to Deleted Items, out of the calendar: a later call
    cannot find it any more (on Google it would read "already cancelled")."""
    booked = book(outlook, "2031-03-11T10:00:00", "g1")
    done = outlook.call_tool(
        "cancelAppointment", {"eventId": booked["eventId"]}, tool_call_id="g2", call=CALLER
    )
    assert done["cancelled"] is True
    later = outlook.call_tool(
        "cancelAppointment", {"eventId": booked["eventId"]}, tool_call_id="g3", call=CALLER
    )
    assert later == {"error": NOT_FOUND}


def test_another_caller_cannot_find_move_or_cancel_an_outlook_appointment(outlook: App) -> None:
    bobs = book(outlook, "2031-03-11T10:00:00", "b1")["eventId"]
    found = outlook.call_tool("findAppointments", {}, tool_call_id="m1", call=MALLORY)
    assert found["appointments"] == []
    widened = outlook.call_tool(
        "findAppointments", {"attendeePhone": "+1 415 555 0123"}, tool_call_id="m2", call=MALLORY
    )
    assert widened["appointments"] == []
    moved = outlook.call_tool(
        "rescheduleAppointment",
        {"eventId": bobs, "startDateTime": "2031-03-12T10:00:00"},
        tool_call_id="m3",
        call=MALLORY,
    )
    cancelled = outlook.call_tool(
        "cancelAppointment", {"eventId": bobs}, tool_call_id="m4", call=MALLORY
    )
    assert moved == {"error": NOT_FOUND} and cancelled == {"error": NOT_FOUND}
    (event,) = in_calendar(outlook)
    assert event["start"]["dateTime"].startswith("2031-03-11T14:00:00")
    # A Graph id of Ana's calendar is not one of ours: refused without a request.
    outlook.emulator.microsoft.reset_requests()
    foreign = outlook.call_tool(
        "cancelAppointment", {"eventId": event["id"]}, tool_call_id="m5", call=MALLORY
    )
    assert foreign == {"error": NOT_FOUND}
    assert outlook.emulator.microsoft.requests() == {}


# -- budgets -----------------------------------------------------------------------------------


def test_a_slow_graph_is_a_clear_error_in_time(tmp_path: Path, emulator: Emulator) -> None:
    overrides = {**microsoft_settings(emulator.url), "tool_budget_seconds": 1.0}
    with running_app(tmp_path, emulator, **overrides) as app:
        app.set_up_ana_on_outlook()
        emulator.microsoft.add_fault("graph.calendarView", latency_ms=1500)
        started = time.perf_counter()
        answer = app.call_tool(
            "checkAvailability", {"startDateTime": bookable_slots(1, now=FROZEN_NOW)[0]}
        )
        elapsed = time.perf_counter() - started
    assert answer == {
        "error": "The calendar took too long to answer. Please try again in a moment."
    }
    assert elapsed < 1.5


def test_throttling_is_waited_out_when_the_budget_allows_and_answered_when_not(
    outlook: App,
) -> None:
    control = outlook.emulator.microsoft
    slot = bookable_slots(1, now=FROZEN_NOW)[0]
    control.add_fault("graph.calendarView", 429, headers={"Retry-After": "1"})
    passed = outlook.call_tool("checkAvailability", {"startDateTime": slot}, tool_call_id="t1")
    assert passed["available"] is True
    assert control.requests()["graph.calendarView"] == 2

    control.add_fault("graph.calendarView", 429, headers={"Retry-After": "60"})
    control.reset_requests()
    started = time.perf_counter()
    refused = outlook.call_tool("checkAvailability", {"startDateTime": slot}, tool_call_id="t2")
    assert refused == {"error": CalendarUnavailable.default_message}
    assert time.perf_counter() - started < 5
    assert control.requests() == {"graph.calendarView": 1}
