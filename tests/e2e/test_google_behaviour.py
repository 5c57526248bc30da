"""Google as its reference documents it, awkward parts included, through the whole server.

Each test makes the emulator behave as Google may (pages that are short or empty, calendars
that cannot be read, an OAuth client Google refuses, refusals no retry can fix, a Meet link
that is still being created, a booking cancelled before its answer was delivered) and checks
what the caller, the operator and the integrator get.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from tests.harness.app import CLIENT_ID, App, Emulator, metric, running_app
from tests.harness.receiver import Receiver
from tests.harness.servers import serve_in_thread
from vapi_calendar.tools.booking import event_id_for
from vapi_calendar.tools.errors import (
    BookingCalendarUnreadable,
    BookingCancelled,
    CalendarAccessDenied,
    CalendarNotFound,
    OrganizerOnly,
    ServiceMisconfigured,
    UsageLimitReached,
)
from vapi_calendar.tools.scheduling import INCOMPLETE_CLAUSE

CALLER = {"customer": {"number": "+14155550123"}, "type": "inboundPhoneCall"}
DAY = "2031-03-11"  # a Tuesday
TEAM = "team@group.calendar.google.com"


def book(app: App, hour: int, tool_call_id: str, **extra: Any) -> dict[str, Any]:
    return app.call_tool(
        "scheduleAppointment",
        {"startDateTime": f"{DAY}T{hour:02d}:00:00", "summary": "Haircut", **extra},
        tool_call_id=tool_call_id,
        call=CALLER,
    )


def set_rules(app: App, **rules: Any) -> None:
    response = app.admin.patch("/api/users/ana", json={"rules": rules})
    assert response.status_code == 200, response.text


def check(app: App, hour: int, tool_call_id: str = "check") -> dict[str, Any]:
    return app.call_tool(
        "checkAvailability", {"startDateTime": f"{DAY}T{hour:02d}:00:00"}, tool_call_id=tool_call_id
    )


# -- events.list paging ----------------------------------------------------------------------------


def test_every_page_is_read_for_finding_and_for_the_daily_limit(app: App) -> None:
    for number, hour in enumerate((9, 11, 14)):
        assert book(app, hour, f"paged_{number}")["booked"] is True
    # Google: a page "may be less than maxResults, or none at all, even if there are more".
    app.emulator.control.set_list_paging(1, empty_pages=True)

    found = app.call_tool("findAppointments", {}, tool_call_id="find", call=CALLER)
    assert found["count"] == 3
    assert [a["start"][11:16] for a in found["appointments"]] == ["09:00", "11:00", "14:00"]

    set_rules(app, maxBookingsPerDay=3)
    full = check(app, 16)
    assert full["available"] is False and full["reason"] == "fullyBooked"
    refused = book(app, 16, "fourth")
    assert refused["booked"] is False and refused["reason"] == "fullyBooked"


# -- calendars that cannot be read -----------------------------------------------------------------


def test_unreadable_calendars_are_reported_and_the_booking_calendar_fails_closed(
    tmp_path: Path, emulator: Emulator
) -> None:
    receiver = Receiver()
    hook = Starlette(routes=[Route("/hook", receiver.endpoint, methods=["POST"])])
    control = emulator.control
    with (
        serve_in_thread(hook) as hook_url,
        running_app(
            tmp_path,
            emulator,
            connection_webhook_url=f"{hook_url}/hook",
            connection_webhook_secret="hook-secret",
        ) as app,
    ):
        app.create_user("ana")
        app.link("asst_ana_haircuts", "ana")
        app.connect_google("ana", "ana@example.com")
        control.add_calendar("ana@example.com", TEAM, "Team")
        set_rules(app, bookingHorizonDays=3650, busyCalendarIds=["primary", TEAM])

        # A busy-only calendar Google cannot compute: answered from the others, and said so.
        control.set_freebusy_error(TEAM, "notFound")
        answer = check(app, 9, "c1")
        assert answer["available"] is True and answer["incomplete"] == [TEAM]
        assert answer["message"].endswith(INCOMPLETE_CLAUSE)
        booked = book(app, 10, "b1")
        assert booked["booked"] is True and booked["incomplete"] == [TEAM]
        (warning,) = app.admin.get("/api/users/ana").json()["google"]["warnings"]
        assert warning["calendarId"] == TEAM and warning["reason"] == "notFound"
        assert warning["since"]
        check(app, 11, "c2")  # still unreadable: the warning stays as it was
        assert app.admin.get("/api/users/ana").json()["google"]["warnings"] == [warning]

        # It reads again: the warning goes and the answer is whole.
        control.set_freebusy_error(TEAM, None)
        whole = check(app, 12, "c3")
        assert "incomplete" not in whole and whole["message"].endswith("PM EDT is free.")
        assert app.admin.get("/api/users/ana").json()["google"]["warnings"] == []

        # The booking calendar itself: no answer from a calendar we cannot see into.
        control.reset_requests()
        control.set_freebusy_error("ana@example.com", "internalError")
        assert check(app, 13, "c4") == {"error": BookingCalendarUnreadable.default_message}
        assert book(app, 13, "b2") == {"error": BookingCalendarUnreadable.default_message}
        assert "events.insert" not in control.requests()
        (primary,) = app.admin.get("/api/users/ana").json()["google"]["warnings"]
        assert (primary["calendarId"], primary["reason"]) == ("primary", "internalError")
        control.set_freebusy_error("ana@example.com", None)

        # An answer that leaves a calendar out is never read as free (fail closed).
        partial = {"kind": "calendar#freeBusy", "calendars": {TEAM: {"busy": []}}}
        control.add_fault("freebusy", 200, body=partial)
        assert book(app, 14, "b3") == {"error": BookingCalendarUnreadable.default_message}
        assert "events.insert" not in control.requests()
        assert check(app, 14, "c5")["available"] is True  # the next answer is whole again

        events = receiver.wait_for(4)
        page = app.http.get(f"{app.url}/metrics").text
    # Delivered in the background: put them in the order they were published.
    events.sort(key=lambda e: e["at"])
    assert [(e["event"], e["calendarId"], e["reason"]) for e in events] == [
        ("calendar_unreadable", TEAM, "notFound"),
        ("calendar_readable", TEAM, "notFound"),
        ("calendar_unreadable", "primary", "internalError"),
        # Its reason changed to notReturned while it stayed unreadable (the left-out answer).
        ("calendar_readable", "primary", "notReturned"),
    ]
    assert all(e["userId"] == "ana" and e["email"] == "ana@example.com" for e in events)
    assert metric(page, "vapi_calendar_unreadable_calendars_total", reason="notFound") == 3
    assert metric(page, "vapi_calendar_unreadable_calendars_total", reason="internalError") == 2
    assert metric(page, "vapi_calendar_unreadable_calendars_total", reason="notReturned") == 1


# -- the OAuth client refused ----------------------------------------------------------------------


def test_a_refused_oauth_client_raises_a_deployment_alarm_not_a_reconnect(
    app: App, caplog: pytest.LogCaptureFixture
) -> None:
    app.connect_google("ana", "ana@example.com", expires_in=0)  # due for a refresh
    app.emulator.control.set_client_rejected(CLIENT_ID)
    caplog.set_level(logging.ERROR, logger="vapi_calendar.oauth.grants")

    for number in range(2):
        answer = check(app, 9, f"rejected_{number}")
        assert answer == {"error": ServiceMisconfigured.default_message}
    google = app.admin.get("/api/users/ana").json()["google"]
    assert google["status"] == "connected"  # nothing the user could fix by reconnecting
    ready = app.http.get(f"{app.url}/readyz")
    assert ready.status_code == 200  # every replica has the same problem: stay in service
    alarm = ready.json()["google"]
    assert alarm["oauthClient"] == "rejected" and alarm["reason"] == "invalid_client"
    assert alarm["since"]
    page = app.http.get(f"{app.url}/metrics").text
    assert metric(page, "vapi_calendar_oauth_client_rejected") == 1
    assert metric(page, "vapi_calendar_token_refreshes_total", outcome="client_rejected") == 2
    (logged,) = [
        r for r in caplog.records if r.levelno == logging.ERROR
    ]  # one line, not one per call
    assert "GOOGLE_CLIENT_ID" in logged.getMessage()
    assert "GOOGLE_CLIENT_SECRET" in logged.getMessage()

    # Fixed at Google: the next refresh succeeds and the alarm clears.
    app.emulator.control.set_client_rejected(CLIENT_ID, False)
    assert check(app, 9, "accepted")["available"] is True
    assert app.http.get(f"{app.url}/readyz").json() == {"status": "ready"}
    page = app.http.get(f"{app.url}/metrics").text
    assert metric(page, "vapi_calendar_oauth_client_rejected") == 0


# -- refusals no retry can fix ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "reason", "expected"),
    [
        ("events.insert", "quotaExceeded", UsageLimitReached.default_message),
        ("events.insert", "requiredAccessLevel", CalendarAccessDenied.default_message),
    ],
)
def test_google_refusals_of_a_booking_are_said_as_they_are_and_not_retried(
    app: App, kind: str, reason: str, expected: str
) -> None:
    app.emulator.control.add_fault(kind, 403, reason, times=5)
    answer = book(app, 10, f"refused_{reason}", attendees=["sam@example.com"])
    assert answer == {"error": expected}
    assert app.emulator.control.requests()[kind] == 1


def test_other_refusals_name_their_cause(app: App) -> None:
    booked = book(app, 10, "to_move")
    control = app.emulator.control
    control.reset_requests()
    control.add_fault("events.patch", 403, "forbiddenForNonOrganizer")
    moved = app.call_tool(
        "rescheduleAppointment",
        {"eventId": booked["eventId"], "startDateTime": f"{DAY}T15:00:00"},
        tool_call_id="move",
    )
    assert moved == {"error": OrganizerOnly.default_message}
    control.add_fault("freebusy", 404)
    missing = check(app, 9, "missing_calendar")
    assert missing == {"error": CalendarNotFound.default_message}
    assert "appointment" not in missing["error"]
    assert control.requests()["freebusy"] == 2  # one for the move, one here: never retried


# -- Meet links that are still being created -------------------------------------------------------


def test_a_pending_meet_link_is_fetched_or_promised_with_the_invitation(app: App) -> None:
    set_rules(app, addGoogleMeet=True)
    app.emulator.control.set_meet_pending(2)
    ready = book(app, 10, "meet_soon", attendees=["sam@example.com"])
    assert ready["booked"] is True and ready["meetLink"].startswith("https://meet.google.com/")
    assert "meetLinkPending" not in ready

    app.emulator.control.set_meet_pending(1000)  # not within this call
    later = book(app, 11, "meet_later", attendees=["sam@example.com"])
    assert later["booked"] is True and later["meetLinkPending"] is True
    assert "meetLink" not in later
    assert later["message"].endswith(
        "The video meeting link will come with the calendar invitation."
    )


# -- a booking cancelled before its answer arrived -------------------------------------------------


def test_a_redelivered_booking_that_was_cancelled_meanwhile_is_not_answered_booked(
    app: App,
) -> None:
    # This call's booking was made (with its deterministic id), its answer lost, and then it
    # was cancelled; Vapi now delivers the call again.
    event_id = event_id_for("ana", "lost_answer")
    app.emulator.control.seed_event(
        "ana@example.com",
        {
            "id": event_id,
            "summary": "Haircut",
            "status": "cancelled",
            "start": {"dateTime": f"{DAY}T10:00:00-04:00"},
            "end": {"dateTime": f"{DAY}T10:30:00-04:00"},
            "extendedProperties": {"private": {"vapiCalendar": "1", "toolCallId": "lost_answer"}},
        },
    )
    answer = book(app, 10, "lost_answer")
    assert answer == {"error": BookingCancelled.default_message}
    live = [e for e in app.emulator.control.events("ana@example.com") if e["status"] != "cancelled"]
    assert live == []  # nothing was booked behind anyone's back
    # A new tool call books afresh.
    assert book(app, 10, "book_again")["booked"] is True
