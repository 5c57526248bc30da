"""The Google boundary's pure translations: token-endpoint errors and conference states.

What google-auth raises and what an event resource holds are built here exactly as the
libraries and Google produce them (google-reference.md §3, §5); no request is made.
"""

from __future__ import annotations

from typing import Any

import pytest
from google.auth.exceptions import RefreshError, TransportError

from vapi_calendar.providers.google.calendar import to_event
from vapi_calendar.providers.google.errors import refresh_error, token_error_code
from vapi_calendar.tools.errors import CalendarUnavailable, ReconnectRequired, ServiceMisconfigured


def _json_error(code: str) -> RefreshError:
    # google-auth's _handle_error_response: "<error>: <description>", then the decoded body.
    return RefreshError(f"{code}: Unauthorized", {"error": code, "error_description": "x"})


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (_json_error("invalid_grant"), ReconnectRequired),
        (_json_error("invalid_client"), ServiceMisconfigured),
        (_json_error("unauthorized_client"), ServiceMisconfigured),
        (_json_error("invalid_request"), CalendarUnavailable),
        # One-argument forms: a non-JSON (HTML) body after google-auth's own retries, the
        # reauth-required invalid_grant subtypes, missing fields. args[1] must not be assumed.
        (RefreshError("<html>502 Bad Gateway</html>", retryable=False), CalendarUnavailable),
        (RefreshError("Reauthentication is needed."), CalendarUnavailable),
        (RefreshError("No access token in response.", {"id_token": "x"}), CalendarUnavailable),
        (TransportError("connection reset"), CalendarUnavailable),
        (TimeoutError(), CalendarUnavailable),
    ],
)
def test_refresh_failures_become_one_domain_error_each(exc: Exception, expected: type) -> None:
    assert type(refresh_error(exc)) is expected


def test_a_refused_client_names_the_settings_to_fix_and_its_cause() -> None:
    translated = refresh_error(_json_error("unauthorized_client"))
    assert isinstance(translated, ServiceMisconfigured)
    assert translated.cause == "unauthorized_client"
    assert "GOOGLE_CLIENT_ID" in translated.fix and "GOOGLE_CLIENT_SECRET" in translated.fix
    assert "GOOGLE" not in translated.message  # the caller hears no setting names
    assert token_error_code(RefreshError("only one argument")) is None


def _event(conference: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": "abc12345",
        "status": "confirmed",
        "start": {"dateTime": "2031-03-11T10:00:00-04:00"},
        "end": {"dateTime": "2031-03-11T10:30:00-04:00"},
        **extra,
    }
    if conference is not None:
        item["conferenceData"] = conference
    return item


def test_meeting_links_come_from_the_video_entry_point_or_hangout_link() -> None:
    success = {
        "createRequest": {"requestId": "r", "status": {"statusCode": "success"}},
        "entryPoints": [
            {"entryPointType": "phone", "uri": "tel:+1-555-0100"},
            {"entryPointType": "video", "uri": "https://meet.google.com/aaa-bbbb-ccc"},
        ],
    }
    event = to_event(_event(success, hangoutLink="https://meet.google.com/other"))
    assert event.meeting_link == "https://meet.google.com/aaa-bbbb-ccc"
    assert not event.meeting_pending
    legacy = to_event(_event(hangoutLink="https://meet.google.com/xyz-abcd-efg"))
    assert legacy.meeting_link == "https://meet.google.com/xyz-abcd-efg"

    pending = to_event(_event({"createRequest": {"status": {"statusCode": "pending"}}}))
    assert pending.meeting_pending and pending.meeting_link is None
    failed = to_event(_event({"createRequest": {"status": {"statusCode": "failure"}}}))
    assert not failed.meeting_pending and failed.meeting_link is None
