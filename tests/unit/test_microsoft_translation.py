"""The Microsoft boundary's pure translations: Graph and token-endpoint errors, time zones, and
event resources, built as Graph's reference shows them; no request is made."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from vapi_calendar.ports.calendar import DuplicateEvent, NewEvent
from vapi_calendar.providers.microsoft import errors
from vapi_calendar.providers.microsoft.calendar import (
    ID_PROPERTY,
    TAGS_PROPERTY,
    event_body,
    graph_time,
    to_event,
)
from vapi_calendar.providers.microsoft.errors import (
    GraphError,
    TokenRejected,
    UnreadableCalendar,
    graph_error,
    token_error,
)
from vapi_calendar.providers.microsoft.oauth import account_email, account_id, granted_scopes
from vapi_calendar.providers.microsoft.zones import iana_zone, windows_zone
from vapi_calendar.tools.errors import (
    CalendarAccessDenied,
    CalendarNotFound,
    CalendarRejected,
    CalendarUnavailable,
    EventGone,
    EventNotFound,
    OrganizerOnly,
    ReconnectRequired,
    ServiceMisconfigured,
    UsageLimitReached,
)


@pytest.mark.parametrize(
    ("status", "code", "operation", "expected"),
    [
        (401, "InvalidAuthenticationToken", errors.GET, TokenRejected),
        (400, "ErrorDuplicateTransactionId", errors.CREATE, DuplicateEvent),
        (409, "ErrorDuplicateTransactionId", errors.CREATE, DuplicateEvent),
        (429, "ApplicationThrottled", errors.BUSY, CalendarUnavailable),
        (503, None, errors.CREATE, CalendarUnavailable),
        (404, "MailboxNotEnabledForRESTAPI", errors.GET, CalendarNotFound),
        (404, "ErrorItemNotFound", errors.BUSY, UnreadableCalendar),
        (403, "ErrorAccessDenied", errors.BUSY, UnreadableCalendar),
        (404, "ErrorItemNotFound", errors.GET, EventNotFound),
        (400, "ErrorInvalidIdMalformed", errors.MOVE, EventNotFound),
        (404, "ErrorItemNotFound", errors.CREATE, CalendarNotFound),
        (404, "ErrorItemNotFound", errors.DELETE, EventGone),
        (403, "ErrorCannotDeleteObject", errors.DELETE, EventGone),
        (400, "ErrorAccessDenied", errors.DELETE, OrganizerOnly),
        (403, "ErrorQuotaExceeded", errors.CREATE, UsageLimitReached),
        (403, "ErrorAccessDenied", errors.CREATE, CalendarAccessDenied),
        (400, "BadRequest", errors.CREATE, CalendarRejected),
    ],
)
def test_graph_failures_become_one_domain_error_each(
    status: int, code: str | None, operation: str, expected: type
) -> None:
    assert type(graph_error(GraphError(status, code), operation)) is expected


def test_a_read_refused_access_says_it_cannot_read() -> None:
    denied = graph_error(GraphError(403, "ErrorAccessDenied"), errors.LIST)
    assert isinstance(denied, CalendarAccessDenied) and "read" in str(denied)
    usage = graph_error(GraphError(403, "ErrorQuotaExceeded"), errors.CREATE)
    assert "Microsoft usage limit" in str(usage)


def test_transport_failures_are_unavailable() -> None:
    assert isinstance(graph_error(TimeoutError(), errors.GET), CalendarUnavailable)


@pytest.mark.parametrize(
    ("status", "error", "expected"),
    [
        (400, "invalid_grant", ReconnectRequired),
        (400, "interaction_required", ReconnectRequired),
        (400, "consent_required", ReconnectRequired),
        (401, "invalid_client", ServiceMisconfigured),
        (400, "unauthorized_client", ServiceMisconfigured),
        (503, "temporarily_unavailable", CalendarUnavailable),
        (502, None, CalendarUnavailable),
    ],
)
def test_token_endpoint_failures_become_one_domain_error_each(
    status: int, error: str | None, expected: type
) -> None:
    body = {"error": error, "error_description": "AADSTS0: x"} if error else {}
    translated = token_error(status, body)
    assert type(translated) is expected
    if isinstance(translated, ServiceMisconfigured):
        assert "MICROSOFT_CLIENT_SECRET" in translated.fix


@pytest.mark.parametrize(
    ("name", "zone"),
    [
        ("Pacific Standard Time", "America/Los_Angeles"),
        ("Eastern Standard Time", "America/New_York"),
        ("UTC", "Etc/UTC"),
        ("Europe/Paris", "Europe/Paris"),
        ("Customized Time Zone", None),
        ("tzone://Microsoft/Custom", None),
        ("", None),
        (None, None),
        ("Atlantis/Nowhere", None),
    ],
)
def test_mailbox_zones_map_to_iana(name: str | None, zone: str | None) -> None:
    assert iana_zone(name) == zone


def test_events_are_written_with_windows_zone_names() -> None:
    assert windows_zone("America/New_York") == "Eastern Standard Time"
    assert windows_zone("Europe/Kyiv") == "FLE Standard Time"
    start = datetime(2031, 3, 11, 18, 0, tzinfo=UTC)
    event = NewEvent(
        id="abc12345",
        summary="Haircut",
        description="x",
        start=start,
        end=start.replace(hour=19),
        timezone="America/New_York",
        tags={"vapiCalendar": "1"},
        add_meeting=True,
    )
    body = event_body(event)
    assert body["start"] == {"dateTime": "2031-03-11T14:00:00", "timeZone": "Eastern Standard Time"}
    assert body["transactionId"] == "abc12345"
    assert body["isOnlineMeeting"] and body["onlineMeetingProvider"] == "teamsForBusiness"
    assert {p["id"]: p["value"] for p in body["singleValueExtendedProperties"]} == {
        ID_PROPERTY: "abc12345",
        TAGS_PROPERTY: '{"vapiCalendar":"1"}',
    }


def test_graph_times_are_read_in_their_zone() -> None:
    utc = {"dateTime": "2031-03-11T18:00:00.0000000", "timeZone": "UTC"}
    windows = {"dateTime": "2031-03-11T14:00:00.0000000", "timeZone": "Eastern Standard Time"}
    assert graph_time(utc) == graph_time(windows) == datetime(2031, 3, 11, 18, tzinfo=UTC)


def test_an_event_resource_becomes_the_ports_event() -> None:
    item = {
        "id": "AAMkADgraphid",
        "subject": "Haircut",
        "isCancelled": True,
        "start": {"dateTime": "2031-03-11T18:00:00.0000000", "timeZone": "UTC"},
        "end": {"dateTime": "2031-03-11T18:30:00.0000000", "timeZone": "UTC"},
        "attendees": [{"emailAddress": {"address": "sam@example.com"}}],
        "isOnlineMeeting": True,
        "onlineMeeting": None,
        "singleValueExtendedProperties": [
            {"id": ID_PROPERTY.upper(), "value": "ours0001"},
            {"id": TAGS_PROPERTY, "value": '{"vapiCalendar":"1"}'},
        ],
    }
    event = to_event(item)
    assert (event.id, event.status, event.tags) == ("ours0001", "cancelled", {"vapiCalendar": "1"})
    assert event.attendees == ("sam@example.com",) and event.meeting_pending
    assert to_event({**item, "singleValueExtendedProperties": []}).id == "AAMkADgraphid"
    all_day = to_event({**item, "isAllDay": True})
    assert (all_day.start, all_day.end) == (None, None)


def test_who_consented_and_to_what() -> None:
    claims = {"tid": "t", "oid": "o", "sub": "s", "preferred_username": "pat@contoso.com"}
    assert account_id(claims) == "t/o" and account_email(claims) == "pat@contoso.com"
    assert account_id({"sub": "s"}) == "s" and account_email({"preferred_username": "pat"}) is None
    granted = "https://graph.microsoft.com/Calendars.ReadWrite MailboxSettings.Read openid"
    assert granted_scopes(granted) == ("calendars.readwrite", "mailboxsettings.read", "openid")
