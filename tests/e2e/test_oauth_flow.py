"""The connect flow over real HTTP: link → landing → consent (emulator) → callback → tokens.

A browser drives the same flow in `test_browser_connect.py`; here plain HTTP covers every
branch quickly, including the failures a browser test would be slow to reach.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from datetime import timedelta
from html import unescape
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from tests.harness.app import App, Emulator, running_app
from tests.harness.consent import connect_link, decide, start_consent
from tests.harness.receiver import Receiver
from tests.harness.servers import serve_in_thread
from vapi_calendar.oauth.links import ConnectLinks, LinkError
from vapi_calendar.oauth.vault import TokenVault, generate_key

FREEBUSY = "https://www.googleapis.com/auth/calendar.freebusy"
ARGS = {"startDateTime": "2031-03-11T09:00:00"}


def consent(
    app: App,
    user_id: str,
    *,
    email: str = "ana@example.com",
    action: str = "allow",
    untick: tuple[str, ...] = (),
) -> tuple[httpx.Response, str]:
    """Walk the flow as a browser would; return the callback's response and its URL."""
    link = connect_link(app, user_id)
    landing = app.http.get(link)
    # The expiry is spoken in the user's own zone, e.g. "Sunday, November 22 at 4:05 PM EST".
    assert re.search(r"works until \w+day, \w+ \d+ at \d+:\d\d [AP]M", landing.text)
    consent_url = start_consent(app.http, app, link)
    callback_url = decide(app.http, app, consent_url, email=email, action=action, untick=untick)
    return app.http.get(callback_url), callback_url


@pytest.fixture
def fresh(app: App) -> App:
    """`app` plus a user `zoe` without a connection and without an explicit time zone."""
    assert app.admin.post("/api/users", json={"id": "zoe"}).status_code == 201
    app.link("asst_zoe", "zoe")
    app.emulator.control.create_account("zoe@example.com", timezone="Europe/Berlin")
    return app


def test_connect_flow_stores_tokens_and_the_calendar_time_zone(fresh: App) -> None:
    start = fresh.http.post(connect_link(fresh, "zoe"))
    params = parse_qs(urlsplit(start.headers["location"]).query)
    assert params["access_type"] == ["offline"] and params["prompt"] == ["consent"]
    assert params["code_challenge_method"] == ["S256"] and params["code_challenge"]
    assert params["redirect_uri"] == [f"{fresh.url}/oauth/google/callback"]
    assert FREEBUSY in params["scope"][0].split()

    response, _ = consent(fresh, "zoe", email="zoe@example.com")
    assert response.status_code == 200
    assert "Your calendar is connected" in response.text and "zoe@example.com" in response.text
    assert response.headers["referrer-policy"] == "no-referrer"
    user = fresh.admin.get("/api/users/zoe").json()
    assert user["google"] == {
        "connected": True,
        "status": "connected",
        "email": "zoe@example.com",
        "warnings": [],
    }
    assert user["timezone"] == "Europe/Berlin"  # adopted from the calendar

    result = fresh.call_tool("checkAvailability", ARGS, assistant_id="asst_zoe")
    assert result["timeZone"] == "Europe/Berlin"


def test_replayed_callback_changes_nothing(fresh: App) -> None:
    first, callback_url = consent(fresh, "zoe", email="zoe@example.com")
    assert first.status_code == 200
    stored = fresh.connection("zoe")
    again = fresh.http.get(callback_url)
    assert again.status_code == 400
    assert "expired or was already used" in again.text
    assert fresh.connection("zoe") == stored


def test_forged_state_is_refused(fresh: App) -> None:
    response = fresh.http.get(f"{fresh.url}/oauth/google/callback?state=forged&code=abc")
    assert response.status_code == 400
    assert fresh.connection("zoe") is None
    assert fresh.emulator.control.requests().get("token.authorization_code", 0) == 0


def test_denied_consent_offers_a_retry_and_stores_nothing(fresh: App) -> None:
    response, _ = consent(fresh, "zoe", email="zoe@example.com", action="deny")
    assert response.status_code == 403
    assert "not connected" in response.text
    retry = re.search(r'id="retry" href="([^"]+)"', response.text)
    assert retry and fresh.http.get(unescape(retry.group(1))).status_code == 200
    assert fresh.connection("zoe") is None


def test_missing_permission_is_named_and_nothing_is_stored(fresh: App) -> None:
    response, _ = consent(fresh, "zoe", email="zoe@example.com", untick=(FREEBUSY,))
    assert response.status_code == 403
    assert "see when you are free or busy" in response.text
    assert 'id="retry"' in response.text
    assert fresh.connection("zoe") is None


def test_code_exchange_failure_gets_a_friendly_page(fresh: App) -> None:
    fresh.emulator.control.add_fault("token.authorization_code", 400, "invalid_grant")
    response, _ = consent(fresh, "zoe", email="zoe@example.com")
    assert response.status_code == 502
    assert "did not accept" in response.text
    assert fresh.connection("zoe") is None


def test_reconnecting_replaces_tokens_and_clears_needs_reconnect(app: App) -> None:
    app.connect_google("ana", "ana@example.com", expires_in=0)
    app.emulator.control.revoke_grants("ana@example.com")
    assert "renewed" in app.call_tool("checkAvailability", ARGS)["error"]
    old = app.connection("ana")

    response, _ = consent(app, "ana")
    assert response.status_code == 200
    new = app.connection("ana")
    assert new.status == "connected" and new.refresh_token != old.refresh_token
    assert "available" in app.call_tool("checkAvailability", ARGS)


def test_bad_links_get_a_clear_page(app: App) -> None:
    for method in ("GET", "POST"):
        response = app.http.request(method, f"{app.url}/connect/garbage")
        assert response.status_code == 400
        assert "not valid" in response.text


def test_links_expire() -> None:
    links = ConnectLinks(TokenVault([generate_key()]), "http://x", lifetime=timedelta(seconds=1))
    link = links.create("ana")
    assert links.verify(link.token).user_id == "ana"
    time.sleep(2.1)
    with pytest.raises(LinkError) as raised:
        links.verify(link.token)
    assert raised.value.problem == "expired"


def test_a_link_expires_when_it_says_whoever_opens_it() -> None:
    """The expiry printed with a link is the link's own: a server configured with another
    CONNECT_LINK_MINUTES (another replica, the CLI's settings) neither shortens nor extends it."""
    vault = TokenVault([generate_key()])
    short = ConnectLinks(vault, "http://x", lifetime=timedelta(seconds=1))
    long = ConnectLinks(vault, "http://x", lifetime=timedelta(hours=1))
    brief, lasting = short.create("ana"), long.create("ben")
    assert long.verify(brief.token).expires_at == brief.expires_at
    assert short.verify(lasting.token).expires_at == lasting.expires_at
    time.sleep(2.1)
    with pytest.raises(LinkError) as raised:
        long.verify(brief.token)
    assert raised.value.problem == "expired"
    assert short.verify(lasting.token).user_id == "ben"


def test_links_signed_by_another_key_are_invalid() -> None:
    mine = ConnectLinks(TokenVault([generate_key()]), "http://x", lifetime=timedelta(seconds=60))
    theirs = ConnectLinks(TokenVault([generate_key()]), "http://x", lifetime=timedelta(seconds=60))
    with pytest.raises(LinkError) as raised:
        mine.verify(theirs.create("ana").token)
    assert raised.value.problem == "invalid"


def test_connect_link_for_unknown_user_is_404(app: App) -> None:
    assert app.admin.post("/api/users/nobody/connect-link").status_code == 404


# -- disconnect --------------------------------------------------------------------------------


def test_disconnect_revokes_and_deletes(app: App) -> None:
    response = app.admin.delete("/api/users/ana/google")
    assert response.json() == {"disconnected": True, "revoked": True}
    assert app.emulator.control.requests().get("revoke") == 1
    assert app.connection("ana") is None
    assert "not connected" in app.call_tool("checkAvailability", ARGS)["error"]
    assert app.admin.delete("/api/users/ana/google").status_code == 404


def test_disconnect_reports_a_failed_revocation_and_still_deletes(app: App) -> None:
    app.emulator.control.add_fault("revoke", 503, times=5)
    body = app.admin.delete("/api/users/ana/google").json()
    assert body["disconnected"] is True and body["revoked"] is False
    assert "503" in body["revokeError"]
    assert app.connection("ana") is None


# -- token endpoint hiccups ----------------------------------------------------------------------


def test_transient_token_endpoint_failure_is_retried_within_the_call(app: App) -> None:
    app.connect_google("ana", "ana@example.com", expires_in=0)
    app.emulator.control.add_fault("token.refresh_token", 503, times=1)
    assert "available" in app.call_tool("checkAvailability", ARGS)
    assert app.emulator.control.requests()["token.refresh_token"] == 2


# -- notifications -----------------------------------------------------------------------------


def test_connection_webhook_is_signed_and_sent_on_each_change(
    tmp_path: Path, emulator: Emulator
) -> None:
    receiver = Receiver()
    hook_app = Starlette(routes=[Route("/hook", receiver.endpoint, methods=["POST"])])
    with (
        serve_in_thread(hook_app) as hook_url,
        running_app(
            tmp_path,
            emulator,
            connection_webhook_url=f"{hook_url}/hook",
            connection_webhook_secret="hook-secret",
        ) as app,
    ):
        app.create_user("ana")
        app.link("asst_ana_haircuts", "ana")
        emulator.control.create_account("ana@example.com", timezone="America/New_York")
        assert consent(app, "ana")[0].status_code == 200
        app.connect_google("ana", "ana@example.com", expires_in=0)
        emulator.control.revoke_grants("ana@example.com")
        assert "renewed" in app.call_tool("checkAvailability", ARGS)["error"]
        assert app.admin.delete("/api/users/ana/google").status_code == 200
        events = receiver.wait_for(3)
    assert [e["event"] for e in events] == ["connected", "needs_reconnect", "disconnected"]
    assert {e["userId"] for e in events} == {"ana"}
    assert events[0]["email"] == "ana@example.com"


# -- key rotation ------------------------------------------------------------------------------


def test_key_rotation_keeps_every_user_working(tmp_path: Path, emulator: Emulator) -> None:
    old_key, new_key = generate_key(), generate_key()
    with running_app(tmp_path, emulator, encryption_key=old_key) as app:
        for user in ("ana", "bob"):
            app.create_user(user)
            app.link(f"asst_{user}", user)
            app.connect_google(user, f"{user}@example.com")
        database_url = app.settings.database_url

    with running_app(tmp_path, emulator, encryption_key=new_key) as app:  # new key only
        result = app.call_tool("checkAvailability", ARGS, assistant_id="asst_ana")
        assert "renewed" in result["error"]  # old ciphertext is unreadable without the old key

    def rotate(keys: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "vapi_calendar.server.cli", "rotate-key"],
            env={"PATH": "/usr/bin:/bin", "DATABASE_URL": database_url, "ENCRYPTION_KEY": keys},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    # Forgetting the old key is reported plainly (no traceback) and changes nothing.
    forgot = rotate(new_key)
    assert forgot.returncode == 1
    assert "2 user(s) have tokens no configured key can decrypt" in forgot.stderr
    assert "Traceback" not in forgot.stderr

    rotated = rotate(f"{new_key},{old_key}")
    assert rotated.returncode == 0, rotated.stderr
    assert "2 user(s)" in rotated.stderr and rotated.stdout.strip() == "2"

    with running_app(tmp_path, emulator, encryption_key=new_key) as app:
        for user in ("ana", "bob"):
            result = app.call_tool("checkAvailability", ARGS, assistant_id=f"asst_{user}")
            assert "available" in result, result
        raw = b"".join(p.read_bytes() for p in (tmp_path / "data").glob("app.db*"))
        vault = TokenVault([new_key])
        token = vault.decrypt(app.connection("bob").access_token, context="access:bob")
        assert token.encode() not in raw
