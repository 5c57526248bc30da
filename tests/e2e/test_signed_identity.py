"""Call metadata names a user only with the integrator's proof (issue #11, signed call identity).

Vapi's web SDK lets any visitor of a web widget pass call overrides with the integrator's public
key, so `assistantOverrides.metadata.userId` alone must never pick a calendar. With the default
`CALL_METADATA_TRUST=signed` it counts only next to `userToken` (`POST /api/users/{id}/call-token`);
stored links need nothing; `any` keeps plain ids on purpose.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.harness.app import App, Emulator, running_app, tool_calls_message
from vapi_calendar.server.config import Settings

CHECK = [("c1", "checkAvailability", {"startDateTime": "2031-03-11T09:00:00"})]
NOT_LINKED = (
    "This assistant is not linked to a user, so I cannot reach a calendar. "
    "Please contact the business directly."
)


def overriding(metadata: dict[str, Any], assistant_id: str | None = None) -> dict[str, Any]:
    return tool_calls_message(
        CHECK, assistant_id=assistant_id, call={"assistantOverrides": {"metadata": metadata}}
    )


def answer(app: App, body: dict[str, Any]) -> dict[str, Any]:
    (result,) = app.results(body)
    return result


def test_a_plain_user_id_in_metadata_is_refused_and_reaches_no_calendar(
    app: App, caplog: pytest.LogCaptureFixture
) -> None:
    result = answer(app, overriding({"userId": "ana"}))
    assert result["error"] == NOT_LINKED
    assert app.emulator.control.requests() == {}
    assert any("without a valid userToken" in r.getMessage() for r in caplog.records)


def test_a_wrong_token_is_refused_and_never_logged(
    app: App, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    app.create_user("mallory")
    forged = app.call_token("mallory")  # a real token, for somebody else
    for token in (forged, "forged-token-must-not-be-logged", ""):
        result = answer(app, overriding({"userId": "ana", "userToken": token}))
        assert result["error"] == NOT_LINKED
    assert app.emulator.control.requests() == {}
    logged = "\n".join(r.getMessage() + str(vars(r)) for r in caplog.records)
    assert "forged-token-must-not-be-logged" not in logged and forged not in logged


def test_a_valid_token_names_the_user(app: App) -> None:
    body = overriding({"userId": "ana", "userToken": app.call_token("ana")})
    result = answer(app, body)
    assert "result" in result and '"timeZone":"America/New_York"' in result["result"]


def test_a_refused_claim_does_not_fall_through_to_a_stored_link(app: App) -> None:
    """An assistant linked to ana, called with a forged override naming ana's neighbour:
    refused outright, never quietly answered from ana's link (nor from bob's)."""
    app.create_user("bob")
    result = answer(app, overriding({"userId": "bob"}, assistant_id="asst_ana_haircuts"))
    assert result["error"] == NOT_LINKED


def test_stored_links_need_no_token(app: App) -> None:
    result = answer(app, tool_calls_message(CHECK, assistant_id="asst_ana_haircuts"))
    assert "result" in result


def test_any_trusts_plain_ids_on_purpose(tmp_path: Path, emulator: Emulator) -> None:
    with running_app(tmp_path, emulator, call_metadata_trust="any") as app:
        app.create_user("ana")
        app.admin.patch("/api/users/ana", json={"rules": {"bookingHorizonDays": 3650}})
        app.connect_google("ana", "ana@example.com")
        result = answer(app, overriding({"userId": "ana"}))
        assert "result" in result


def test_demo_mode_trusts_plain_ids_and_production_does_not() -> None:
    demo = Settings(_env_file=None)
    assert demo.demo_mode and demo.metadata_trust == "any"
    real = Settings(_env_file=None, google_client_id="id", google_client_secret="secret")
    assert real.metadata_trust == "signed"


def test_the_cli_prints_the_same_token_as_the_api(app: App, tmp_path: Path) -> None:
    assert app.admin.post("/api/users/nobody/call-token").status_code == 404
    assert app.settings.encryption_key is not None
    done = subprocess.run(
        [sys.executable, "-m", "vapi_calendar.server", "call-token", "ana"],
        cwd=tmp_path,
        env={
            **os.environ,
            "DATABASE_URL": app.settings.database_url,
            "ENCRYPTION_KEY": app.settings.encryption_key.get_secret_value(),
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == app.call_token("ana")
