"""The `vapi-calendar` command as a script uses it: one value on stdout, notes on stderr,
`--json` everywhere, exit status 0 done / 1 not found or refused / 2 bad usage or settings."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import click
import httpx

from tests.harness.app import App
from vapi_calendar.server.cli import main


def test_every_command_takes_json() -> None:
    for name, command in main.commands.items():
        assert isinstance(command, click.Command)
        assert "--json" in {opt for p in command.params for opt in getattr(p, "opts", [])}, name
        helped = subprocess.run(
            [sys.executable, "-m", "vapi_calendar.server.cli", name, "--help"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert helped.returncode == 0 and "--json" in helped.stdout, name


def test_connect_link_prints_the_url_alone_and_its_own_expiry(app: App) -> None:
    done = app.cli("connect-link", "ana")
    assert done.returncode == 0, done.stderr
    (url,) = done.stdout.splitlines()  # no `head -1` needed
    assert url.startswith(f"{app.settings.public_url}/connect/")
    assert "expires" in done.stderr
    as_json = app.cli("connect-link", "ana", "--json")
    made = json.loads(as_json.stdout)
    assert set(made) == {"url", "expiresAt", "allowAccountChange"}
    expires = datetime.fromisoformat(made["expiresAt"])
    assert timedelta(minutes=29) < expires - datetime.now(UTC) <= timedelta(minutes=31)
    # The server that opens the link (whatever its own CONNECT_LINK_MINUTES) agrees.
    assert httpx.get(made["url"]).status_code == 200


def test_values_on_stdout_and_json_for_each(app: App) -> None:
    created = app.cli("create-user", "zoe", "--timezone", "Europe/Berlin")
    assert created.returncode == 0 and created.stdout == "zoe\n"
    assert "created user zoe" in created.stderr
    user = json.loads(app.cli("create-user", "yann", "--json").stdout)
    assert user["id"] == "yann" and user["calendar"]["status"] == "not_connected"
    token = app.cli("call-token", "zoe")
    assert token.stdout.strip() == app.call_token("zoe")
    assert json.loads(app.cli("call-token", "zoe", "--json").stdout)["userId"] == "zoe"
    linked = app.cli("link-assistant", "asst_zoe", "zoe", "--json")
    assert json.loads(linked.stdout) == {"assistantId": "asst_zoe", "userId": "zoe"}
    key = json.loads(app.cli("create-api-key", "zoe", "--name", "ci", "--json").stdout)
    assert key["key"].startswith("vcal_") and key["name"] == "ci"
    listed = app.cli("list-api-keys", "zoe")
    assert listed.stdout.split("\t")[:2] == [key["id"], "ci"]
    assert json.loads(app.cli("generate-key", "--json").stdout)["key"]


def test_exit_status_says_what_went_wrong(app: App) -> None:
    nobody = app.cli("connect-link", "nobody")
    assert nobody.returncode == 1 and nobody.stdout == ""
    assert nobody.stderr.strip() == "Error: no user 'nobody'"
    assert app.cli("create-user", "ana").returncode == 1  # exists
    assert app.cli("connect-link", "not a valid id!").returncode == 2
    assert app.cli("connect-link").returncode == 2  # missing argument
    assert app.cli("vapi-tools", "--server-url", "not-a-url").returncode == 2
    assert (
        app.cli("vapi-tools", "--server-url", "https://x.example", "--auth", "oauth2").returncode
        == 2
    )
