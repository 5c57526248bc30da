"""Bad input an integrator can cause (issue #11): one validation for the admin API, the CLI and
the settings; clear one-line errors; nothing half-done; never a traceback or a 500."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.harness.app import App, Emulator, running_app
from vapi_calendar.oauth.grants import seal
from vapi_calendar.oauth.vault import TokenVault, generate_key
from vapi_calendar.ports.oauth import Grant

BAD_USER_IDS = ["", "../../x y<script>", "a/b", "a\x00b", "x" * 2000, " lead", "ü-umlaut"]
BAD_ZONES = ["EST", "localtime", "Factory", "posixrules", "Etc/GMT+5", "GMT", "america/new_york"]
GOOD_ZONES = ["America/New_York", "Europe/Berlin", "UTC", "US/Eastern"]


@pytest.mark.parametrize("user_id", BAD_USER_IDS)
def test_the_api_refuses_odd_user_ids_naming_the_field(app: App, user_id: str) -> None:
    response = app.admin.post("/api/users", json={"id": user_id})
    assert response.status_code == 400
    assert response.json()["error"].startswith("id: ")
    linked = app.admin.put("/api/assistants/asst_x", json={"userId": user_id})
    assert linked.status_code == 400 and linked.json()["error"].startswith("userId: ")


@pytest.mark.parametrize("assistant_id", ["a\x00b", "x" * 2000, "a b", "<script>"])
def test_the_api_refuses_odd_assistant_ids(app: App, assistant_id: str) -> None:
    response = app.admin.put(
        f"/api/assistants/{quote(assistant_id, safe='')}", json={"userId": "ana"}
    )
    assert response.status_code == 400
    assert response.json()["error"].startswith("assistantId: ")


@pytest.mark.parametrize("zone", BAD_ZONES)
def test_only_place_names_are_time_zones(app: App, zone: str) -> None:
    for response in (
        app.admin.post("/api/users", json={"id": "tz-user", "timezone": zone}),
        app.admin.patch("/api/users/ana", json={"timezone": zone}),
    ):
        assert response.status_code == 400
        assert response.json()["error"].startswith("timezone: ")
    assert app.admin.get("/api/users/ana").json()["timezone"] == "America/New_York"


@pytest.mark.parametrize("zone", GOOD_ZONES)
def test_place_names_and_utc_are_accepted(app: App, zone: str) -> None:
    response = app.admin.post("/api/users", json={"id": "tz-ok", "timezone": zone})
    assert response.status_code == 201 and response.json()["timezone"] == zone


def cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    settings = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'data' / 'cli.db'}",
        "ENCRYPTION_KEY": generate_key(),
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "vapi_calendar.server", *args],
        cwd=tmp_path,  # never the repository: a developer's .env must not configure this
        env={**os.environ, **settings},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("user_id", ["", "../../x y<script>", "a/b", "x" * 2000])
def test_the_cli_refuses_what_the_api_refuses(tmp_path: Path, user_id: str) -> None:
    done = cli(tmp_path, "create-user", user_id)
    assert done.returncode == 2, done.stderr
    assert "not a valid user id" in done.stderr and "Traceback" not in done.stderr
    linked = cli(tmp_path, "link-assistant", "asst", user_id)
    assert linked.returncode == 2 and "not a valid user id" in linked.stderr
    odd_assistant = cli(tmp_path, "link-assistant", "a\x01b", "ana")
    assert odd_assistant.returncode == 2 and "not a valid id" in odd_assistant.stderr


def test_the_cli_refuses_legacy_zones(tmp_path: Path) -> None:
    done = cli(tmp_path, "create-user", "ana", "--timezone", "EST")
    assert done.returncode == 2 and "not a time zone" in done.stderr
    ok = cli(tmp_path, "create-user", "ana", "--timezone", "America/New_York")
    assert ok.returncode == 0, ok.stderr


@pytest.mark.parametrize(
    ("setting", "value", "named"),
    [
        ("DEFAULT_TIMEZONE", "EST", "DEFAULT_TIMEZONE"),
        ("DEFAULT_TIMEZONE", "localtime", "DEFAULT_TIMEZONE"),
        ("LOG_LEVEL", "verbose", "LOG_LEVEL"),
        ("TOOL_BUDGET_SECONDS", "soon", "TOOL_BUDGET_SECONDS"),
        ("ENCRYPTION_KEY", "not-a-key", "ENCRYPTION_KEY"),
        ("DATABASE_URL", "postgres://db/x", "DATABASE_URL"),
        ("PUBLIC_URL", "calendar.example.com", "PUBLIC_URL"),
        ("GOOGLE_CLIENT_ID", "only-the-id", "GOOGLE_CLIENT_SECRET"),
    ],
)
def test_a_bad_setting_is_one_line_naming_it_and_exit_2(
    tmp_path: Path, setting: str, value: str, named: str
) -> None:
    done = cli(tmp_path, "serve", "--port", "1", **{setting: value})
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and named in lines[0], done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_an_unusable_database_path_is_a_configuration_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    done = cli(tmp_path, "serve", "--port", "1", DATABASE_URL=f"sqlite:///{blocker}/x.db")
    assert done.returncode == 2 and "DATABASE_URL" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_missing_webhook_secret_is_warned_about_at_start(
    tmp_path: Path, emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    with running_app(tmp_path, emulator, vapi_secret="", vapi_hmac_secret=""):
        pass
    assert any("no webhook secret is set" in r.getMessage() for r in caplog.records)


def test_tokens_no_configured_key_can_read_show_as_undecryptable(
    app: App, caplog: pytest.LogCaptureFixture
) -> None:
    foreign = TokenVault([generate_key()])
    grant = Grant("access", "refresh", None, ("openid",))
    asyncio.run(app._save(seal(foreign, "ana", grant, email="ana@example.com", subject=None)))

    google = app.admin.get("/api/users/ana").json()["google"]
    assert (google["connected"], google["status"]) == (False, "undecryptable")
    assert any("cannot be decrypted" in r.getMessage() for r in caplog.records)
    assert (
        "renewed"
        in app.call_tool("checkAvailability", {"startDateTime": "2031-03-11T09:00"})["error"]
    )


@pytest.mark.parametrize("when", ["9999-12-31T10:00:00", "0001-01-01T10:00:00", "1850-06-01T10:00"])
def test_dates_out_of_any_calendars_range_get_the_date_sentence(app: App, when: str) -> None:
    for tool in ("checkAvailability", "scheduleAppointment"):
        result = app.call_tool(tool, {"startDateTime": when}, tool_call_id=f"{tool}-{when}")
        assert result == {
            "error": "I could not read startDateTime; send it like 2031-03-11T14:00:00."
        }
