"""Replay every recorded Vapi webhook against the running app and the emulator.

The fixtures are validated against Vapi's own SDK models in `test_vapi_fixtures.py`; here they
prove the server answers each one correctly (every answer validated with the SDK too),
directly and through `vapi-calendar replay`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from vapi.types import ServerMessageResponseToolCalls

from tests.harness.app import FIXTURES, VAPI_SECRET, App
from tests.harness.vapi import SOURCED_FIXTURES, unknown_keys


def results_of(app: App, fixture: Path) -> Any:
    response = app.webhook(fixture.read_bytes())
    assert response.status_code == 200, response.text
    return response.json()


def signed_results_of(app: App, fixture: Path) -> Any:
    response = app.webhook(app.signed(json.loads(fixture.read_text())))
    assert response.status_code == 200, response.text
    return response.json()


def parsed(result: dict[str, Any]) -> dict[str, Any]:
    assert "error" not in result, result
    return json.loads(result["result"])


def test_check_availability_fixture(app: App) -> None:
    (result,) = results_of(app, FIXTURES / "tool_calls_check_availability.json")["results"]
    assert result["toolCallId"] == "call_check_1"
    assert parsed(result)["requested"]["start"] == "2031-03-11T09:00:00-04:00"


def test_schedule_fixture_with_object_arguments(app: App) -> None:
    (result,) = results_of(app, FIXTURES / "tool_calls_schedule_object_args.json")["results"]
    booked = parsed(result)
    assert booked["booked"] is True and booked["start"] == "2031-03-11T10:00:00-04:00"
    (event,) = app.emulator.control.events("ana@example.com")
    assert event["extendedProperties"]["private"]["attendeePhone"] == "+14155550123"


def test_legacy_duplicate_list_runs_the_call_once(app: App) -> None:
    results = results_of(app, FIXTURES / "tool_calls_legacy_duplicate.json")["results"]
    assert [r["toolCallId"] for r in results] == ["call_check_legacy_1"]
    assert app.emulator.control.requests() == {"freebusy": 1}


def test_two_calls_run_and_answer_in_order(app: App) -> None:
    results = results_of(app, FIXTURES / "tool_calls_two_calls.json")["results"]
    assert [r["toolCallId"] for r in results] == ["call_check_12", "call_check_13"]
    assert parsed(results[0])["requested"]["start"].startswith("2031-03-12T09:00")
    assert parsed(results[1])["requested"]["start"].startswith("2031-03-13T09:00")


@pytest.mark.parametrize(
    "fixture",
    [
        "tool_calls_transient_assistant.json",
        "tool_calls_override_metadata.json",
        "variants/tool_calls_flattened.json",
    ],
)
def test_metadata_resolved_users_and_variants(app: App, fixture: str) -> None:
    results = signed_results_of(app, FIXTURES / fixture)["results"]
    assert results and all(parsed(r)["timeZone"] == "America/New_York" for r in results)


def test_unlinked_assistant_fixture(app: App) -> None:
    (result,) = results_of(app, FIXTURES / "tool_calls_unlinked_assistant.json")["results"]
    assert "not linked to a user" in result["error"]
    assert result["message"] == {"type": "request-failed", "content": result["error"]}
    assert app.emulator.control.requests() == {}


ALL_FIXTURES = sorted(str(path.relative_to(FIXTURES)) for path in FIXTURES.glob("**/*.json"))


def answers(app: App, name: str) -> list[dict[str, Any]]:
    """The fixture's answer, validated with Vapi's SDK (`{}` for non-tool messages); user ids
    in its metadata carry their call tokens, as CALL_METADATA_TRUST=signed requires."""
    body = signed_results_of(app, FIXTURES / name)
    if json.loads((FIXTURES / name).read_text())["message"]["type"] != "tool-calls":
        assert body == {}
        return []
    response = ServerMessageResponseToolCalls.model_validate(body)
    assert response.results is not None and not unknown_keys(response)
    results: list[dict[str, Any]] = body["results"]
    return results


# What each real body (fixtures named after their public source) is answered, and whose
# calendar: every one names `ana` in its own way (see the fixtures README), except the
# dashboard copy, whose call names nobody.
SOURCED: dict[str, Any] = {
    "vapi4k_transient_assistant_phone.json": lambda r: parsed(r)["available"] is True,
    "vapi4k_squad_inline_phone.json": lambda r: parsed(r)["durationMinutes"] == 45,
    "vapi4k_squad_member_webcall.json": lambda r: parsed(r)["count"] == 0,
    "finzie_saved_assistant_tool_calls.json": lambda r: parsed(r)["booked"] is True,
    "help_netizen_sip_tool_calls.json": lambda r: parsed(r)["requested"]["end"].startswith(
        "2031-03-17T12:00"
    ),
    "wanda_squad_saved_members_sip.json": lambda r: (
        r["error"] == "I could not find that appointment."
        and r["message"] == {"type": "request-failed", "role": "system", "content": r["error"]}
    ),
    "ellie_chat_tool_calls.json": lambda r: parsed(r)["available"] is True,
    "variants/keey_pretty_string_arguments.json": lambda r: (
        r["error"].startswith("This assistant is not linked") and "role" not in r["message"]
    ),
}


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_every_fixture_is_answered(app: App, name: str) -> None:
    results = answers(app, name)
    for result in results:
        if name in SOURCED:
            assert SOURCED[name](result), result
        if "result" in result:
            assert "timeZone" not in parsed(result) or (
                parsed(result)["timeZone"] == "America/New_York"
            )


def test_every_sourced_tool_call_fixture_is_checked() -> None:
    sourced = {
        name
        for name in SOURCED_FIXTURES
        if json.loads((FIXTURES / name).read_text())["message"]["type"] == "tool-calls"
    }
    assert sourced == set(SOURCED)


def test_replay_command_posts_fixtures_to_a_live_server(app: App) -> None:
    files = [
        FIXTURES / "tool_calls_check_availability.json",
        FIXTURES / "status_update.json",
    ]
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "vapi_calendar.server.cli",
            "replay",
            *map(str, files),
            "--url",
            f"{app.url}/vapi/webhook",
            "--secret",
            VAPI_SECRET,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr.count("HTTP 200") == 2
    assert '"toolCallId": "call_check_1"' in completed.stdout


def test_replay_command_fails_on_a_rejected_webhook(app: App) -> None:
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "vapi_calendar.server.cli",
            "replay",
            str(FIXTURES / "status_update.json"),
            "--url",
            f"{app.url}/vapi/webhook",
            "--secret",
            "wrong",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 1
    assert "HTTP 401" in completed.stderr
