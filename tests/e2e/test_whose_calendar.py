"""Whose calendar a call touches, over real HTTP: every place Vapi can name the user, in order.

Two users with different zones, each with a connected calendar, so an answer's `timeZone` says
whose calendar was read: `ana` (America/New_York, assistant `asst_ana_haircuts`, her Vapi
number) and `bob` (Europe/Paris).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.harness.app import ANA_PHONE_NUMBER_ID, App, tool_calls_message
from vapi_calendar.pipeline.identity import MISSING_USER

CHECK = [("call_whose_1", "checkAvailability", {"startDateTime": "2031-03-11T09:00:00"})]
ANA, BOB = "America/New_York", "Europe/Paris"
BOB_NUMBER_ID = "3c5e7a9b-1d2f-4e6a-8b0c-2d4f6a8c0e1b"


@pytest.fixture
def two_users(app: App) -> App:
    app.create_user("bob", timezone=BOB)
    app.admin.patch("/api/users/bob", json={"rules": {"bookingHorizonDays": 3650}})
    app.connect_google("bob", "bob@example.com")
    app.link("asst_bob", "bob")
    return app


def message(
    *,
    call: dict[str, Any] | None = None,
    assistant: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    body = tool_calls_message(CHECK, assistant_id=None, call=call, assistant=assistant)
    body["message"].update(extra)
    if "chat" in extra:
        del body["message"]["call"]  # chats carry no call
    return body


def heard(app: App, body: dict[str, Any]) -> str:
    """Whose zone the answer is in, or the error the caller hears. User ids in metadata carry
    their call tokens, as the production default (CALL_METADATA_TRUST=signed) requires."""
    (result,) = app.results(app.signed(body))
    if "error" in result:
        return str(result["error"])
    return str(json.loads(result["result"])["timeZone"])


# Each case: the message's identity fields, and whose calendar answers.
CASES: dict[str, tuple[dict[str, Any], str]] = {
    "per-call override beats the assistant's link": (
        {
            "call": {
                "assistantId": "asst_ana_haircuts",
                "assistantOverrides": {"metadata": {"userId": "bob"}},
            }
        },
        BOB,
    ),
    "squad override beats the active member": (
        {
            "call": {"squadOverrides": {"metadata": {"userId": "bob"}}},
            "assistant": {"id": "asst_ana_haircuts"},
        },
        BOB,
    ),
    "transient assistant inline in the call": (
        {"call": {"assistant": {"metadata": {"userId": "bob"}}}},
        BOB,
    ),
    "active assistant's metadata beats the inline copy": (
        {
            "call": {"assistant": {"metadata": {"userId": "ana"}}},
            "assistant": {"metadata": {"userId": "bob"}},
        },
        BOB,
    ),
    "metadata beats a stored link": (
        {
            "call": {"assistantId": "asst_ana_haircuts"},
            "assistant": {"metadata": {"userId": "bob"}},
        },
        BOB,
    ),
    "squad of saved assistants: the active member's id": (
        {
            "call": {
                "squad": {
                    "members": [{"assistantId": "asst_ana_haircuts"}, {"assistantId": "asst_bob"}]
                }
            },
            "assistant": {"id": "asst_bob"},
        },
        BOB,
    ),
    "active member's id beats the call's assistant id": (
        {"call": {"assistantId": "asst_ana_haircuts"}, "assistant": {"id": "asst_bob"}},
        BOB,
    ),
    "chat: the chat's assistant": (
        {"chat": {"id": "chat-1", "assistantId": "asst_bob"}},
        BOB,
    ),
    "chat with an inline assistant": (
        {"chat": {"id": "chat-1", "assistant": {"metadata": {"userId": "bob"}}}},
        BOB,
    ),
    "phone number link": (
        {"call": {"phoneNumberId": BOB_NUMBER_ID}},
        BOB,
    ),
    "an assistant link beats a phone number link": (
        {"call": {"assistantId": "asst_ana_haircuts", "phoneNumberId": BOB_NUMBER_ID}},
        ANA,
    ),
    "an unlinked assistant falls through to the phone number": (
        {"call": {"assistantId": "asst_nobody", "phoneNumberId": BOB_NUMBER_ID}},
        BOB,
    ),
    "the phone number object when the call has no phoneNumberId": (
        {"phoneNumber": {"id": ANA_PHONE_NUMBER_ID}},
        ANA,
    ),
    "a user named in metadata that does not exist is reported, not replaced": (
        {
            "call": {"assistantId": "asst_ana_haircuts"},
            "assistant": {"metadata": {"userId": "eve"}},
        },
        MISSING_USER,
    ),
    "nothing names a user": (
        {"call": {"assistantId": "asst_nobody", "phoneNumberId": "pn-nobody"}},
        "This assistant is not linked to a user",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_resolution_precedence(two_users: App, case: str) -> None:
    fields, expected = CASES[case]
    two_users.link_phone_number(BOB_NUMBER_ID, "bob")
    assert heard(two_users, message(**fields)).startswith(expected)


def test_link_and_unlink_phone_numbers(app: App) -> None:
    body = message(call={"phoneNumberId": "pn-new"})
    assert heard(app, body).startswith("This assistant is not linked")
    assert app.admin.put("/api/phone-numbers/pn-new", json={"userId": "nobody"}).status_code == 404
    response = app.admin.put("/api/phone-numbers/pn-new", json={"userId": "ana"})
    assert response.status_code == 200
    assert response.json() == {"phoneNumberId": "pn-new", "userId": "ana"}
    assert heard(app, body) == ANA
    assert app.admin.delete("/api/phone-numbers/pn-new").status_code == 204
    assert app.admin.delete("/api/phone-numbers/pn-new").status_code == 404
    assert heard(app, body).startswith("This assistant is not linked")


@pytest.mark.parametrize(
    ("payload", "needle"),
    [({}, "userId"), ({"userId": "has space"}, "userId"), ({"userId": "ana", "x": 1}, "x")],
)
def test_bad_phone_number_links_get_400_naming_the_field(
    app: App, payload: dict[str, Any], needle: str
) -> None:
    response = app.admin.put("/api/phone-numbers/pn-1", json=payload)
    assert response.status_code == 400 and needle in response.json()["error"]


def test_phone_number_routes_need_the_admin_token(app: App) -> None:
    response = app.http.put(f"{app.url}/api/phone-numbers/pn-1", json={"userId": "ana"})
    assert response.status_code == 401
    assert heard(app, message(call={"phoneNumberId": "pn-1"})).startswith("This assistant")


def test_cli_links_and_unlinks_phone_numbers(app: App) -> None:
    body = message(call={"phoneNumberId": "pn-cli"})
    done = app.cli("link-phone-number", "pn-cli", "ana")
    assert done.returncode == 0, done.stderr
    assert "pn-cli -> ana" in done.stderr and done.stdout == ""
    assert heard(app, body) == ANA
    unknown = app.cli("link-phone-number", "pn-cli", "nobody")
    assert unknown.returncode != 0 and "no user 'nobody'" in unknown.stderr
    done = app.cli("unlink-phone-number", "pn-cli")
    assert done.returncode == 0, done.stderr
    assert heard(app, body).startswith("This assistant is not linked")
    again = app.cli("unlink-phone-number", "pn-cli")
    assert again.returncode != 0 and "not linked" in again.stderr


def test_deleting_a_user_removes_its_phone_number_links(app: App) -> None:
    body = message(call={"phoneNumberId": ANA_PHONE_NUMBER_ID})
    assert heard(app, body) == ANA
    assert app.admin.delete("/api/users/ana").status_code == 200
    app.create_user("ana")  # the same id again starts without links
    assert heard(app, body).startswith("This assistant is not linked")


def test_a_chat_books_under_its_chat_id(app: App) -> None:
    body = tool_calls_message(
        [("call_chat_book", "scheduleAppointment", {"startDateTime": "2031-03-11T10:00:00"})],
        assistant_id=None,
    )
    del body["message"]["call"]
    body["message"]["chat"] = {"id": "chat-42", "assistantId": "asst_ana_haircuts"}
    (result,) = app.results(body)
    assert json.loads(result["result"])["booked"] is True
    (event,) = app.emulator.control.events("ana@example.com")
    assert event["extendedProperties"]["private"]["callId"] == "chat-42"
