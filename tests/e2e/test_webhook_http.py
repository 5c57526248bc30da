"""The webhook's HTTP contract: authentication first, clear 4xx for bad input, never a 500."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from pathlib import Path

import httpx
import pytest

from tests.harness.app import HMAC_SECRET, App, Emulator, app_settings, load_fixture
from tests.harness.servers import serve_in_thread
from vapi_calendar.server.app import create_app

BOOKING = {
    "message": {
        "type": "tool-calls",
        "call": {"id": "c", "assistantId": "asst_ana_haircuts"},
        "toolCallList": [
            {
                "id": "call_unauth",
                "type": "function",
                "function": {
                    "name": "scheduleAppointment",
                    "arguments": {"startDateTime": "2031-03-11T10:00:00", "summary": "x"},
                },
            }
        ],
    }
}


def signed(body: bytes, *, secret: str = HMAC_SECRET, timestamp: str | None = None) -> dict:
    ts = timestamp or str(int(time.time()))
    digest = hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"x-timestamp": ts, "x-signature": digest}


def assert_nothing_executed(app: App) -> None:
    assert app.emulator.control.requests() == {}
    assert app.emulator.control.events("ana@example.com") == []


@pytest.mark.parametrize(
    "headers",
    [
        {"x-vapi-secret": ""},
        {"x-vapi-secret": "wrong"},
        {"x-vapi-secret": "", "authorization": "Bearer wrong"},
        {"x-vapi-secret": "", "authorization": "Basic dGVzdA=="},
    ],
    ids=["missing", "wrong-header", "wrong-bearer", "wrong-scheme"],
)
def test_unauthenticated_requests_get_401_and_nothing_runs(app: App, headers: dict) -> None:
    response = app.webhook(BOOKING, **headers)
    assert response.status_code == 401
    assert response.json()["error"].startswith("unauthorized")
    assert_nothing_executed(app)


def test_bearer_header_is_accepted(app: App) -> None:
    from tests.harness.app import VAPI_SECRET

    response = app.webhook(
        load_fixture("status_update.json"),
        **{"x-vapi-secret": "", "authorization": f"Bearer {VAPI_SECRET}"},
    )
    assert response.status_code == 200


def test_hmac_signature_alone_authenticates(app: App) -> None:
    body = json.dumps(load_fixture("tool_calls_check_availability.json")).encode()
    response = app.webhook(body, **{"x-vapi-secret": ""}, **signed(body))
    assert response.status_code == 200
    assert "result" in response.json()["results"][0]


@pytest.mark.parametrize(
    "tamper",
    ["body", "signature", "stale", "secret"],
)
def test_badly_signed_webhooks_get_401_and_nothing_runs(app: App, tamper: str) -> None:
    body = json.dumps(BOOKING).encode()
    headers = signed(body)
    if tamper == "body":
        body = body.replace(b"10:00", b"11:00")
    elif tamper == "signature":
        headers["x-signature"] = "0" * 64
    elif tamper == "stale":
        headers = signed(body, timestamp=str(int(time.time()) - 3600))
    else:
        headers = signed(body, secret="not-the-secret")
    response = app.webhook(body, **{"x-vapi-secret": ""}, **headers)
    assert response.status_code == 401
    assert_nothing_executed(app)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"{not json", "JSON"),
        (b"[]", "message"),
        (b'{"message": []}', "message"),
        (b'{"message": {}}', "type"),
        (b'{"message": {"type": 7}}', "type"),
        (b'{"message": {"type": "tool-calls"}}', "tool"),
        (b'{"message": {"type": "tool-calls", "toolCallList": [{"function": {}}]}}', "id"),
        ("\udcff".encode("utf-8", "surrogatepass"), "UTF-8"),
    ],
)
def test_malformed_bodies_get_400_naming_the_problem(app: App, body: bytes, expected: str) -> None:
    response = app.webhook(body)
    assert response.status_code == 400
    assert expected in response.json()["error"]
    assert_nothing_executed(app)


def test_oversized_body_gets_413(app: App) -> None:
    response = app.webhook(b'{"message": {"type": "x", "pad": "' + b"a" * 1_100_000 + b'"}}')
    assert response.status_code == 413
    assert_nothing_executed(app)


def test_arguments_that_are_not_json_get_a_per_call_error(app: App) -> None:
    body = json.loads(json.dumps(BOOKING))
    body["message"]["toolCallList"][0]["function"]["arguments"] = "{oops"
    (result,) = app.results(body)
    assert result["toolCallId"] == "call_unauth" and "error" in result
    assert_nothing_executed(app)


@pytest.mark.parametrize(
    "fixture", ["status_update.json", "end_of_call_report.json", "conversation_update.json"]
)
def test_other_message_types_get_empty_200_without_google(app: App, fixture: str) -> None:
    response = app.webhook(load_fixture(fixture))
    assert response.status_code == 200 and response.json() == {}
    assert app.emulator.control.requests() == {}


def test_webhook_fails_closed_without_a_secret(tmp_path: Path, emulator: Emulator) -> None:
    settings = app_settings(tmp_path, emulator.url, vapi_secret=None, vapi_hmac_secret=None)
    with serve_in_thread(create_app(settings)) as url:
        response = httpx.post(
            f"{url}/vapi/webhook",
            json=load_fixture("tool_calls_check_availability.json"),
            headers={"x-vapi-secret": "anything"},
        )
    assert response.status_code == 401
    assert "not configured" in response.json()["error"]
    assert emulator.control.requests() == {}


def test_health(app: App) -> None:
    assert app.http.get(f"{app.url}/healthz").json() == {"status": "ok"}
    assert app.http.get(f"{app.url}/readyz").json() == {"status": "ready"}
