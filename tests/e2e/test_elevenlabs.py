"""ElevenLabs webhook tools at /elevenlabs/tools/{toolName} (issue #13), over real HTTP.

No signature exists for tool calls: the tool's secret header is the credential (401 before
anything runs otherwise). After that every answer is a 200 the agent can say, because
ElevenLabs hides non-2xx answers from the agent.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from elevenlabs.types import ToolRequestModel

from tests.harness.app import ELEVENLABS_TOOL_SECRET, App, Emulator, running_app
from tests.harness.platforms import (
    ANA_NUMBER,
    CALLER_NUMBER,
    ELEVENLABS_AGENT,
    ELEVENLABS_FIXTURES,
    elevenlabs_answer,
    elevenlabs_body,
    elevenlabs_fixture,
    elevenlabs_post,
)
from vapi_calendar.server.elevenlabs.protocol import SYSTEM_VARIABLES
from vapi_calendar.tools.table import TOOLS

NOT_LINKED = (
    "This assistant is not linked to a user, so I cannot reach a calendar. "
    "Please contact the business directly."
)
CHECK_ARGS = {"startDateTime": "2031-03-11T09:00:00"}
BOOK_ARGS = {"startDateTime": "2031-03-11T10:00:00", "summary": "Haircut with Sam Lee"}


def link_agent(app: App, agent_id: str = ELEVENLABS_AGENT) -> None:
    response = app.admin.put(f"/api/links/elevenlabs/{agent_id}", json={"userId": "ana"})
    assert response.status_code == 200, response.text


def test_a_tool_call_is_answered_like_vapi(app: App) -> None:
    link_agent(app)
    answer = elevenlabs_answer(
        app, "checkAvailability", elevenlabs_fixture("checkAvailability.phone_call.json")
    )
    assert answer == app.call_tool("checkAvailability", CHECK_ARGS)


def test_booking_tags_the_conversation_and_the_caller(app: App) -> None:
    link_agent(app)
    body = elevenlabs_fixture("scheduleAppointment.phone_call.json")
    assert elevenlabs_answer(app, "scheduleAppointment", body)["booked"] is True
    (event,) = app.emulator.control.events("ana@example.com")
    tags = event["extendedProperties"]["private"]
    assert tags["callId"] == body["system__conversation_id"]
    assert tags["attendeePhone"] == CALLER_NUMBER


def test_a_repeated_call_books_once(app: App) -> None:
    link_agent(app)
    body = elevenlabs_body(BOOK_ARGS, conversation="conv_repeat")
    first = elevenlabs_answer(app, "scheduleAppointment", body)
    again = elevenlabs_answer(app, "scheduleAppointment", body)
    assert first["booked"] is True and again == first
    assert len(app.emulator.control.events("ana@example.com")) == 1


@pytest.mark.parametrize(
    "secret", [None, "wrong-secret", ELEVENLABS_TOOL_SECRET + "x", ELEVENLABS_TOOL_SECRET[:-1]]
)
def test_a_missing_or_wrong_secret_is_401_before_anything_runs(
    app: App, secret: str | None
) -> None:
    link_agent(app)
    response = elevenlabs_post(
        app, "scheduleAppointment", elevenlabs_body(BOOK_ARGS), secret=secret
    )
    assert response.status_code == 401
    assert app.emulator.control.requests() == {}
    assert app.emulator.control.events("ana@example.com") == []


def test_without_the_setting_every_call_is_refused(tmp_path: Path, emulator: Emulator) -> None:
    with running_app(tmp_path, emulator, elevenlabs_tool_secret=None) as app:
        app.set_up_ana()
        link_agent(app)
        response = elevenlabs_post(app, "checkAvailability", elevenlabs_body(CHECK_ARGS))
        assert response.status_code == 401
        assert app.emulator.control.requests() == {}


@pytest.mark.parametrize(
    ("body", "sentence"),
    [
        (b"{not json", "The tool arguments were not valid JSON."),
        (b"[1, 2]", "The tool arguments were not a JSON object."),
    ],
)
def test_a_body_it_cannot_read_is_still_a_sentence(app: App, body: bytes, sentence: str) -> None:
    link_agent(app)
    response = elevenlabs_post(app, "checkAvailability", body)
    assert response.status_code == 200
    assert response.json()["error"] == sentence


def test_every_failure_is_a_200_with_a_sentence(app: App) -> None:
    unlinked = elevenlabs_answer(app, "checkAvailability", elevenlabs_body(CHECK_ARGS))
    assert unlinked["error"] == NOT_LINKED and unlinked["callerCanFix"] is False
    link_agent(app)
    unknown = elevenlabs_answer(app, "bookFlight", elevenlabs_body({}))
    assert unknown["error"] == "The calendar action 'bookFlight' is not available."
    missing = elevenlabs_answer(app, "scheduleAppointment", elevenlabs_body({}))
    assert missing["error"] == "I need startDateTime to do that."
    assert missing["callerCanFix"] is True


def test_the_called_number_can_be_linked(app: App) -> None:
    response = app.admin.put(
        f"/api/links/elevenlabs/phone-numbers/{ANA_NUMBER}", json={"userId": "ana"}
    )
    assert response.status_code == 200, response.text
    body = {**elevenlabs_body(CHECK_ARGS), "system__agent_id": "agent_unlinked"}
    assert elevenlabs_answer(app, "checkAvailability", body)["available"] is True


def test_a_web_conversation_without_numbers_works(app: App) -> None:
    link_agent(app)
    body = elevenlabs_fixture("checkAvailability.web_conversation.json")
    assert elevenlabs_answer(app, "checkAvailability", body)["available"] is True


def test_elevenlabs_tools_prints_tools_the_sdk_accepts(app: App) -> None:
    done = app.cli(
        "elevenlabs-tools", "--server-url", "https://cal.example.com", "--secret-id", "sec_42"
    )
    assert done.returncode == 0, done.stderr
    tools = json.loads(done.stdout)["tools"]
    assert [t["tool_config"]["name"] for t in tools] == [t.name for t in TOOLS]
    for printed, spec in zip(tools, TOOLS, strict=True):
        model = ToolRequestModel.model_validate(printed)
        config = model.tool_config
        assert config.type == "webhook"
        assert config.api_schema.url == f"https://cal.example.com/elevenlabs/tools/{spec.name}"
        assert config.api_schema.method == "POST"
        schema = printed["tool_config"]["api_schema"]["request_body_schema"]
        text = json.dumps(schema)
        # ElevenLabs' schema has no such keys: bounds and formats are in the descriptions.
        for key in ('"format"', '"pattern"', '"minimum"', '"maximum"', '"anyOf"', '"default"'):
            assert key not in text
        for variable in SYSTEM_VARIABLES:
            assert schema["properties"][variable] == {
                "type": "string",
                "dynamic_variable": variable,
            }
        for name, prop in schema["properties"].items():
            if name not in SYSTEM_VARIABLES:
                assert prop["description"]  # filled by the LLM
    missing = app.cli("elevenlabs-tools", "--server-url", "https://cal.example.com")
    assert missing.returncode != 0


def test_replay_sends_elevenlabs_fixtures(app: App) -> None:
    link_agent(app)
    files = sorted(str(p) for p in ELEVENLABS_FIXTURES.glob("*.json"))
    done = app.cli(
        "replay",
        "--platform",
        "elevenlabs",
        "--url",
        app.url,
        "--tool-secret",
        ELEVENLABS_TOOL_SECRET,
        *files,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr.count("HTTP 200") == len(files)
    assert '"booked": true' in done.stdout
