"""The connect flow as an attacker would try it (issue #11): links are single use, a failure never
mints a new link, consent is bound to the browser that started it, and a connected user is not
silently moved to another Google account."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from tests.harness.app import App, Emulator, running_app
from tests.harness.consent import connect_link, decide, start_consent
from tests.harness.receiver import Receiver
from tests.harness.servers import serve_in_thread


@pytest.fixture
def carol(app: App) -> App:
    """`app` plus a user `carol` without a connection, and two Google accounts."""
    app.create_user("carol")
    app.emulator.control.create_account("carol@example.com", timezone="America/New_York")
    app.emulator.control.create_account("mallory@example.com", timezone="America/New_York")
    return app


def finish(client: httpx.Client, app: App, link: str, email: str) -> httpx.Response:
    consent_url = start_consent(client, app, link)
    return client.get(decide(client, app, consent_url, email=email))


def test_a_link_connects_once_and_then_shows_a_clear_page(carol: App) -> None:
    link = connect_link(carol, "carol")
    assert finish(carol.http, carol, link, "carol@example.com").status_code == 200
    connected = carol.connection("carol")
    assert connected is not None and connected.email == "carol@example.com"

    for method in ("GET", "POST"):
        again = carol.http.request(method, link)
        assert again.status_code == 410
        assert "already used" in again.text and 'id="connect-' not in again.text
    assert carol.connection("carol") == connected


def test_two_consents_started_from_one_link_connect_only_once(carol: App) -> None:
    """Carol presses Connect in two tabs; an attacker holding the link too cannot use the second
    one to re-bind her user to another account."""
    link = connect_link(carol, "carol")
    with httpx.Client(timeout=30) as attacker:
        theirs = start_consent(attacker, carol, link)
        mine = start_consent(carol.http, carol, link)
        assert (
            carol.http.get(decide(carol.http, carol, mine, email="carol@example.com")).status_code
            == 200
        )
        revoked = carol.emulator.control.requests().get("revoke", 0)

        late = attacker.get(decide(attacker, carol, theirs, email="mallory@example.com"))
    assert late.status_code in (409, 410)
    connected = carol.connection("carol")
    assert connected is not None and connected.email == "carol@example.com"
    # The refused grant was revoked at Google, not left behind.
    assert carol.emulator.control.requests().get("revoke", 0) == revoked + 1


def test_a_failed_attempt_keeps_the_same_link_and_mints_no_new_one(carol: App) -> None:
    link = connect_link(carol, "carol")
    consent_url = start_consent(carol.http, carol, link)
    denied = carol.http.get(
        decide(carol.http, carol, consent_url, email="carol@example.com", action="deny")
    )
    assert denied.status_code == 403
    retry = denied.text.split('id="retry" href="', 1)[1].split('"', 1)[0]
    assert retry.replace("&amp;", "&") == link  # the very same link, nothing fresher
    assert finish(carol.http, carol, link, "carol@example.com").status_code == 200


def test_a_callback_without_the_starting_browsers_cookie_changes_nothing(carol: App) -> None:
    link = connect_link(carol, "carol")
    consent_url = start_consent(carol.http, carol, link)
    callback = decide(carol.http, carol, consent_url, email="carol@example.com")
    with httpx.Client(timeout=30) as other_browser:
        response = other_browser.get(callback)
    assert response.status_code == 400
    assert "browser you started in" in response.text
    assert carol.connection("carol") is None
    assert carol.emulator.control.requests().get("token.authorization_code", 0) == 0
    # The link itself still works for Carol.
    assert finish(carol.http, carol, link, "carol@example.com").status_code == 200


def test_the_binding_cookie_is_httponly_lax_short_and_scoped(carol: App) -> None:
    landing = carol.http.get(connect_link(carol, "carol"))
    start = httpx.post(str(landing.url), timeout=30)
    cookie = start.headers["set-cookie"]
    assert cookie.startswith("vapi_calendar_consent=")
    attributes = {part.strip().split("=", 1)[0].lower() for part in cookie.split(";")}
    assert {"httponly", "samesite", "path", "max-age"} <= attributes
    assert "samesite=lax" in cookie.lower() and "path=/oauth/google/callback" in cookie.lower()
    assert "max-age=600" in cookie.lower()
    assert "secure" not in attributes  # plain-http deployment: a Secure cookie would be dropped


def test_the_binding_cookie_is_secure_under_https(tmp_path: Path, emulator: Emulator) -> None:
    # The flag follows PUBLIC_URL (behind a TLS-terminating proxy the server itself sees http).
    with running_app(tmp_path, emulator, public_url="https://calendar.example.com") as app:
        app.create_user("carol")
        link = connect_link(app, "carol").replace("https://calendar.example.com", app.url)
        start = httpx.post(link, timeout=30)
        assert start.status_code == 303
        assert "secure" in {p.strip().lower() for p in start.headers["set-cookie"].split(";")}


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    received = Receiver()
    app = Starlette(routes=[Route("/hook", received.endpoint, methods=["POST"])])
    with serve_in_thread(app) as url:
        yield received, f"{url}/hook"


def test_another_google_account_is_refused_unless_the_link_allows_it(
    tmp_path: Path, emulator: Emulator, receiver: tuple[Receiver, str]
) -> None:
    received, hook = receiver
    with running_app(
        tmp_path, emulator, connection_webhook_url=hook, connection_webhook_secret="hook-secret"
    ) as app:
        app.create_user("carol")
        for email in ("carol@example.com", "mallory@example.com"):
            emulator.control.create_account(email, timezone="America/New_York")
        assert (
            finish(app.http, app, connect_link(app, "carol"), "carol@example.com").status_code
            == 200
        )
        before = app.connection("carol")
        revoked = emulator.control.requests().get("revoke", 0)

        refused = finish(app.http, app, connect_link(app, "carol"), "mallory@example.com")
        assert refused.status_code == 409
        assert "different Google account" in refused.text
        assert app.connection("carol") == before
        assert emulator.control.requests().get("revoke", 0) == revoked + 1

        # The same account may always reconnect; a new account needs a link made for that.
        assert (
            finish(app.http, app, connect_link(app, "carol"), "carol@example.com").status_code
            == 200
        )
        allowed = connect_link(app, "carol", allowAccountChange=True)
        assert finish(app.http, app, allowed, "mallory@example.com").status_code == 200
        after = app.connection("carol")
        assert after is not None and after.email == "mallory@example.com"
        events = [e["event"] for e in received.wait_for(4)]
    assert events == ["connected", "connected", "account_changed", "connected"]
