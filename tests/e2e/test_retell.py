"""Retell custom functions at /retell/functions/{toolName} (issue #13), over real HTTP.

Requests are signed by retell-sdk's own signer; fixtures are Retell's call objects (validated
against retell-sdk's models in tests/unit/test_platform_fixtures.py). Whose calendar follows
the same rules as Vapi: signed metadata, then the agent's link, then its number's.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from retell.types.llm_response import GeneralToolCustomTool

from tests.harness.app import RETELL_API_KEY, App, Emulator, running_app
from tests.harness.platforms import (
    ANA_NUMBER,
    CALLER_NUMBER,
    RETELL_AGENT,
    RETELL_FIXTURES,
    retell_answer,
    retell_fixture,
    retell_post,
    retell_request,
    retell_sign,
)
from vapi_calendar.server.tool_schemas import parameters
from vapi_calendar.tools.table import TOOLS

NOT_LINKED = (
    "This assistant is not linked to a user, so I cannot reach a calendar. "
    "Please contact the business directly."
)
CHECK_ARGS = {"startDateTime": "2031-03-11T09:00:00"}
BOOK_ARGS = {"startDateTime": "2031-03-11T10:00:00", "summary": "Haircut with Sam Lee"}


def link_agent(app: App, agent_id: str = RETELL_AGENT, user_id: str = "ana") -> None:
    response = app.admin.put(f"/api/links/retell/{agent_id}", json={"userId": user_id})
    assert response.status_code == 200, response.text


def test_a_full_request_is_answered_like_vapi(app: App) -> None:
    link_agent(app)
    answer = retell_answer(
        app, "checkAvailability", retell_fixture("checkAvailability.phone_call.json")
    )
    assert answer == app.call_tool("checkAvailability", CHECK_ARGS)
    assert answer["available"] is True


def test_booking_tags_the_call_and_the_caller(app: App) -> None:
    link_agent(app)
    body = retell_fixture("scheduleAppointment.phone_call.json")
    answer = retell_answer(app, "scheduleAppointment", body)
    assert answer["booked"] is True and answer["start"] == "2031-03-11T10:00:00-04:00"
    (event,) = app.emulator.control.events("ana@example.com")
    tags = event["extendedProperties"]["private"]
    assert tags["callId"] == body["call"]["call_id"]
    assert tags["attendeePhone"] == CALLER_NUMBER  # from_number of an inbound call


def test_a_retried_call_books_once(app: App) -> None:
    link_agent(app)
    body = retell_request("scheduleAppointment", BOOK_ARGS, call_id="call_retry")
    first = retell_answer(app, "scheduleAppointment", body)
    # Retell re-sends the same function call (max_retry): a new signature, the same call.
    again = retell_answer(app, "scheduleAppointment", body)
    assert first["booked"] is True and again == first
    assert len(app.emulator.control.events("ana@example.com")) == 1


def test_the_url_names_the_tool(app: App) -> None:
    """An integrator may call the function something else in Retell; the URL decides."""
    link_agent(app)
    body = retell_request("check_calendar", CHECK_ARGS)
    assert retell_answer(app, "checkAvailability", body)["available"] is True
    unknown = retell_answer(app, "bookFlight", body)
    assert unknown["error"] == "The calendar action 'bookFlight' is not available."
    assert unknown["callerCanFix"] is True


@pytest.mark.parametrize(
    "signature",
    [
        None,  # missing
        "",  # empty
        "not-a-signature",
        "v=1700000000000,d=" + "0" * 64,  # well-formed, stale and wrong
    ],
)
def test_a_missing_or_malformed_signature_is_401_before_anything_runs(
    app: App, signature: str | None
) -> None:
    link_agent(app)
    response = retell_post(
        app,
        "scheduleAppointment",
        retell_request("scheduleAppointment", BOOK_ARGS),
        signature=signature,
    )
    assert response.status_code == 401
    assert response.json() == {"error": "unauthorized: invalid or missing X-Retell-Signature"}
    assert app.emulator.control.requests() == {}
    assert app.emulator.control.events("ana@example.com") == []


def test_a_signature_with_another_key_or_over_another_body_is_refused(app: App) -> None:
    link_agent(app)
    body = json.dumps(retell_request("scheduleAppointment", BOOK_ARGS)).encode()
    other_key = retell_sign(body, api_key="key_somebody_else")
    assert retell_post(app, "scheduleAppointment", body, signature=other_key).status_code == 401
    tampered = body.replace(b"10:00:00", b"11:00:00")
    signature = retell_sign(body)
    assert retell_post(app, "scheduleAppointment", tampered, signature=signature).status_code == 401
    assert app.emulator.control.requests() == {}


@pytest.mark.parametrize("skew_ms", [-6 * 60 * 1000, 6 * 60 * 1000])
def test_a_stale_or_future_timestamp_is_refused(app: App, skew_ms: int) -> None:
    link_agent(app)
    body = json.dumps(retell_request("checkAvailability", CHECK_ARGS)).encode()
    signature = retell_sign(body, timestamp_ms=int(time.time() * 1000) + skew_ms)
    assert retell_post(app, "checkAvailability", body, signature=signature).status_code == 401
    assert app.emulator.control.requests() == {}


def test_without_retell_api_key_every_call_is_refused(tmp_path: Path, emulator: Emulator) -> None:
    with running_app(tmp_path, emulator, retell_api_key=None) as app:
        app.set_up_ana()
        link_agent(app)
        body = retell_request("checkAvailability", CHECK_ARGS)
        assert retell_post(app, "checkAvailability", body).status_code == 401
        assert app.emulator.control.requests() == {}


def test_a_body_that_is_not_json_is_400(app: App) -> None:
    response = retell_post(app, "checkAvailability", b"{not json")
    assert response.status_code == 400
    assert response.json() == {"error": "body is not valid JSON"}


def test_an_unlinked_agent_hears_the_not_linked_sentence(app: App) -> None:
    answer = retell_answer(
        app, "checkAvailability", retell_request("checkAvailability", CHECK_ARGS)
    )
    assert answer["error"] == NOT_LINKED and answer["callerCanFix"] is False
    assert app.emulator.control.requests() == {}


def test_the_agents_number_can_be_linked_instead(app: App) -> None:
    response = app.admin.put(
        f"/api/links/retell/phone-numbers/{ANA_NUMBER}", json={"userId": "ana"}
    )
    assert response.status_code == 200, response.text
    answer = retell_answer(
        app, "checkAvailability", retell_request("checkAvailability", CHECK_ARGS)
    )
    assert answer["available"] is True


def test_an_outbound_call_uses_the_agents_number_and_reaches_the_callers_bookings(
    app: App,
) -> None:
    app.admin.put(f"/api/links/retell/phone-numbers/{ANA_NUMBER}", json={"userId": "ana"})
    booked = retell_answer(
        app, "scheduleAppointment", retell_request("scheduleAppointment", BOOK_ARGS, agent_id="x")
    )
    assert booked["booked"] is True
    # Outbound: Ana's number calls the customer; the customer is to_number.
    body = retell_fixture("findAppointments.outbound_phone_call.json")
    body["call"]["agent_id"] = "ag_not_linked"
    found = retell_answer(app, "findAppointments", body)
    assert found["count"] == 1


def test_metadata_names_the_user_only_with_its_token(app: App) -> None:
    body = retell_fixture("checkAvailability.web_call_metadata.json")
    link_agent(app, body["call"]["agent_id"], "ana")
    app.create_user("bob")
    body["call"]["metadata"]["userId"] = "bob"
    # A plain user id is refused, and does not fall through to the agent's link.
    refused = retell_answer(app, "checkAvailability", body)
    assert refused["error"] == NOT_LINKED
    assert app.emulator.control.requests() == {}
    # With its token it names the user (bob has no calendar connected: his sentence, not ana's).
    named = retell_answer(app, "checkAvailability", app.signed(body))
    assert named["error"].startswith("The calendar is not connected yet")


def test_dynamic_variables_can_name_the_user_with_a_token(app: App) -> None:
    body = retell_request(
        "checkAvailability",
        CHECK_ARGS,
        agent_id="ag_unlinked",
        retell_llm_dynamic_variables={"userId": "ana", "userToken": app.call_token("ana")},
    )
    assert retell_answer(app, "checkAvailability", body)["available"] is True


def test_metadata_trust_any_takes_plain_ids(tmp_path: Path, emulator: Emulator) -> None:
    with running_app(tmp_path, emulator, call_metadata_trust="any") as app:
        app.set_up_ana()
        body = retell_fixture("checkAvailability.web_call_metadata.json")
        assert retell_answer(app, "checkAvailability", body)["available"] is True


def test_args_only_takes_the_call_from_headers(app: App) -> None:
    link_agent(app)
    headers = {
        "X-Agent-Id": RETELL_AGENT,
        "X-Call-Id": "call_args_only",
        "X-Caller-Number": CALLER_NUMBER,
    }
    first = retell_answer(app, "scheduleAppointment", BOOK_ARGS, headers=headers)
    again = retell_answer(app, "scheduleAppointment", BOOK_ARGS, headers=headers)
    assert first["booked"] is True and again == first
    (event,) = app.emulator.control.events("ana@example.com")
    assert event["extendedProperties"]["private"]["callId"] == "call_args_only"
    fixture = retell_fixture("checkAvailability.args_only.json")
    assert retell_answer(app, "checkAvailability", fixture, headers=headers)["available"] is True
    # Without the agent header nothing names the user.
    unnamed = retell_answer(app, "checkAvailability", fixture)
    assert unnamed["error"] == NOT_LINKED


def test_unfilled_header_templates_are_no_value(app: App) -> None:
    headers = {"X-Agent-Id": "{{agent_id}}", "X-Call-Id": "{{call_id}}"}
    answer = retell_answer(app, "checkAvailability", CHECK_ARGS, headers=headers)
    assert answer["error"] == NOT_LINKED


def test_retell_tools_prints_custom_functions_retell_accepts(app: App) -> None:
    done = app.cli(
        "retell-tools", "--server-url", "https://cal.example.com", "--timezone", "America/New_York"
    )
    assert done.returncode == 0, done.stderr
    output = json.loads(done.stdout)
    tools = output["general_tools"]
    assert [t["name"] for t in tools] == [t.name for t in TOOLS]
    for printed, spec in zip(tools, TOOLS, strict=True):
        model = GeneralToolCustomTool.model_validate(printed)
        assert model.url == f"https://cal.example.com/retell/functions/{spec.name}"
        assert model.method == "POST" and model.args_at_root is False
        assert printed["parameters"] == parameters(spec.arguments)
        assert model.execution_message_description == spec.start
    assert "{{current_time_America/New_York}}" in output["general_prompt"]

    args_only = app.cli(
        "retell-tools",
        "--server-url",
        "https://cal.example.com",
        "--args-at-root",
        "--agent-id",
        RETELL_AGENT,
    )
    tool = json.loads(args_only.stdout)["general_tools"][0]
    assert GeneralToolCustomTool.model_validate(tool).args_at_root is True
    assert tool["headers"] == {
        "X-Call-Id": "{{call_id}}",
        "X-Caller-Number": "{{user_number}}",
        "X-Agent-Id": RETELL_AGENT,
    }


def test_replay_signs_retell_fixtures(app: App) -> None:
    link_agent(app)
    files = sorted(str(p) for p in RETELL_FIXTURES.glob("*phone_call.json"))
    done = app.cli(
        "replay",
        "--platform",
        "retell",
        "--url",
        app.url,
        "--retell-api-key",
        RETELL_API_KEY,
        *files,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr.count("HTTP 200") == len(files)
    assert '"booked": true' in done.stdout
    unsigned = app.cli("replay", "--platform", "retell", "--url", app.url, files[0])
    assert unsigned.returncode == 1 and "HTTP 401" in unsigned.stderr
