"""Connecting Microsoft 365 / Outlook over real HTTP: the landing page's choice, consent with
PKCE at the identity platform (the emulator), the callback, and what a grant becomes later —
rotated refresh tokens stored once, a dead grant flagged, a switch of provider only with a link
that allows it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from tests.harness.app import (
    FROZEN_NOW,
    App,
    Emulator,
    bookable_slots,
    microsoft_settings,
    running_app,
)
from tests.harness.consent import connect_link, decide, sign_in_microsoft, start_consent
from tests.harness.receiver import Receiver
from tests.harness.servers import serve_in_thread
from vapi_calendar.tools.errors import ReconnectRequired

MAILBOX = "zoe@contoso.com"


@pytest.fixture
def both(tmp_path: Path, emulator: Emulator) -> Iterator[App]:
    """A server offering Google and Microsoft, with user `zoe` (no time zone of her own) and
    her Microsoft account (mailbox zone W. Europe Standard Time, as Outlook keeps it)."""
    with running_app(tmp_path, emulator, **microsoft_settings(emulator.url)) as app:
        assert app.admin.post("/api/users", json={"id": "zoe"}).status_code == 201
        app.link("asst_zoe", "zoe")
        emulator.microsoft.create_account(MAILBOX, timezone="W. Europe Standard Time")
        yield app


def connect(app: App, user_id: str, email: str, **options: bool) -> tuple[int, str]:
    link = connect_link(app, user_id, **options)
    consent_url = start_consent(app.http, app, link, "microsoft")
    callback = app.http.get(sign_in_microsoft(app.http, app, consent_url, email=email))
    return callback.status_code, callback.text


def test_the_landing_page_offers_both_and_microsoft_connects(both: App) -> None:
    link = connect_link(both, "zoe")
    landing = both.http.get(link)
    assert "Connect your calendar" in landing.text
    assert 'id="connect-google"' in landing.text and 'id="connect-microsoft"' in landing.text
    assert "Connect Microsoft 365 / Outlook" in landing.text
    # The form's redirect may go to both providers' consent pages, and nowhere else.
    csp = landing.headers["content-security-policy"]
    assert f"form-action 'self' {both.emulator.url};" in csp  # one emulator plays both

    start = both.http.post(link, data={"provider": "microsoft"})
    assert start.status_code == 303
    consent = urlsplit(start.headers["location"])
    params = {k: v[0] for k, v in parse_qs(consent.query).items()}
    assert consent.path == "/common/oauth2/v2.0/authorize"
    assert params["client_id"] == both.settings.microsoft_client_id
    assert params["redirect_uri"] == f"{both.url}/oauth/microsoft/callback"
    assert params["response_type"] == "code" and params["response_mode"] == "query"
    assert params["code_challenge_method"] == "S256" and len(params["code_challenge"]) == 43
    assert params["scope"].split() == [
        "offline_access",
        "openid",
        "email",
        "Calendars.ReadWrite",
        "MailboxSettings.Read",
    ]
    # The consent cookie goes only to Microsoft's callback.
    cookie = start.headers["set-cookie"]
    assert "Path=/oauth/microsoft/callback" in cookie and "HttpOnly" in cookie

    callback_url = sign_in_microsoft(both.http, both, start.headers["location"], email=MAILBOX)
    assert "state=" in callback_url and "code=" in callback_url
    done = both.http.get(callback_url)
    assert done.status_code == 200, done.text
    assert "Your calendar is connected" in done.text and "Outlook calendar" in done.text
    user = both.admin.get("/api/users/zoe").json()
    assert user["calendar"] == {
        "provider": "microsoft",
        "connected": True,
        "status": "connected",
        "email": MAILBOX,
        "warnings": [],
    }
    assert user["google"]["connected"] is False
    # The mailbox's Windows zone, as IANA.
    assert user["timezone"] == "Europe/Berlin"
    stored = both.connection("zoe")
    assert stored is not None and stored.provider == "microsoft"
    account = both.emulator.microsoft.get_account(MAILBOX)
    assert stored.subject == f"{account['tid']}/{account['oid']}"

    result = both.call_tool(
        "checkAvailability", {"startDateTime": "2031-03-11T09:00:00"}, assistant_id="asst_zoe"
    )
    assert result["timeZone"] == "Europe/Berlin" and "available" in result


def test_replayed_forged_or_misdirected_callbacks_change_nothing(both: App) -> None:
    link = connect_link(both, "zoe")
    consent_url = start_consent(both.http, both, link, "microsoft")
    callback_url = sign_in_microsoft(both.http, both, consent_url, email=MAILBOX)
    # Microsoft's answer delivered to Google's callback: refused, and the state is used up.
    misdirected = callback_url.replace("/oauth/microsoft/callback", "/oauth/google/callback")
    assert both.http.get(misdirected).status_code == 400
    assert both.http.get(callback_url).status_code == 400
    assert both.connection("zoe") is None

    forged = both.http.get(f"{both.url}/oauth/microsoft/callback?state=forged&code=abc")
    assert forged.status_code == 400
    assert both.emulator.microsoft.requests().get("entra.token.authorization_code", 0) == 0


def test_cancelled_or_unapproved_consent_offers_a_retry_and_stores_nothing(both: App) -> None:
    link = connect_link(both, "zoe")
    consent_url = start_consent(both.http, both, link, "microsoft")
    cancelled = both.http.get(
        sign_in_microsoft(both.http, both, consent_url, email=MAILBOX, action="cancel")
    )
    assert cancelled.status_code == 403 and "not connected" in cancelled.text
    assert 'id="retry"' in cancelled.text

    # A tenant whose users may not consent themselves ("Need admin approval").
    tenant = both.emulator.microsoft.get_account(MAILBOX)["tid"]
    both.emulator.microsoft.configure(admin_consent_tenants=[tenant])
    consent_url = start_consent(both.http, both, link, "microsoft")
    unapproved = both.http.get(sign_in_microsoft(both.http, both, consent_url, email=MAILBOX))
    assert unapproved.status_code == 403
    assert "administrator must approve" in unapproved.text and 'id="retry"' in unapproved.text
    assert both.connection("zoe") is None

    # The administrator's approval comes back to the same callback: a page, nothing stored.
    approved = both.http.get(
        f"{both.url}/oauth/microsoft/callback?admin_consent=True&tenant={tenant}"
    )
    assert approved.status_code == 200 and "Approved for your organization" in approved.text
    assert both.connection("zoe") is None


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    received = Receiver()
    app = Starlette(routes=[Route("/hook", received.endpoint, methods=["POST"])])
    with serve_in_thread(app) as url:
        yield received, f"{url}/hook"


def test_switching_provider_follows_the_account_change_rule(
    tmp_path: Path, emulator: Emulator, receiver: tuple[Receiver, str]
) -> None:
    received, hook = receiver
    settings = {
        **microsoft_settings(emulator.url),
        "connection_webhook_url": hook,
        "connection_webhook_secret": "hook-secret",
    }
    with running_app(tmp_path, emulator, **settings) as app:
        app.create_user("carol")
        emulator.control.create_account("carol@example.com", timezone="America/New_York")
        emulator.microsoft.create_account("carol@fabrikam.com")
        link = connect_link(app, "carol")
        consent = start_consent(app.http, app, link, "google")
        google = app.http.get(decide(app.http, app, consent, email="carol@example.com"))
        assert google.status_code == 200
        before = app.connection("carol")

        status, text = connect(app, "carol", "carol@fabrikam.com")
        assert status == 409 and "cannot switch the calendar to Microsoft 365" in text
        assert "another Google account" in text
        assert app.connection("carol") == before

        status, _ = connect(app, "carol", "carol@fabrikam.com", allowAccountChange=True)
        assert status == 200
        after = app.connection("carol")
        assert after is not None and (after.provider, after.email) == (
            "microsoft",
            "carol@fabrikam.com",
        )
        events = [e["event"] for e in received.wait_for(3)]
    assert events == ["connected", "account_changed", "connected"]


def test_rotated_refresh_tokens_are_stored_and_refreshed_once(outlook: App) -> None:
    """Microsoft answers a new refresh token on every refresh. Concurrent calls share one
    refresh, and the rotated token is stored before it is used: with used tokens retired at
    once, a second refresh works only if the first one's new token was kept."""
    control = outlook.emulator.microsoft
    control.configure(retire_used_refresh_tokens=True)
    slots = bookable_slots(6, now=FROZEN_NOW)
    for round_ in range(2):
        first = outlook.connection("ana")
        control.expire_access_tokens("ana@contoso.com")
        control.reset_requests()

        def check(n: int, round_: int = round_) -> dict[str, object]:
            return outlook.call_tool(
                "checkAvailability", {"startDateTime": slots[n]}, tool_call_id=f"r{round_}-{n}"
            )

        with ThreadPoolExecutor(max_workers=6) as pool:
            answers = list(pool.map(check, range(6)))
        assert all("available" in a for a in answers), answers
        assert control.requests().get("entra.token.refresh_token") == 1
        stored = outlook.connection("ana")
        assert stored is not None and first is not None
        assert stored.refresh_token != first.refresh_token
        assert stored.provider == "microsoft"


def test_a_dead_grant_needs_a_reconnect_and_disconnect_says_what_was_revoked(
    outlook: App,
) -> None:
    control = outlook.emulator.microsoft
    control.add_fault("entra.token.refresh_token", 400, "interaction_required")
    control.expire_access_tokens("ana@contoso.com")
    slot = bookable_slots(1, now=FROZEN_NOW)[0]
    answer = outlook.call_tool("checkAvailability", {"startDateTime": slot})
    assert answer == {"error": ReconnectRequired.default_message}
    user = outlook.admin.get("/api/users/ana").json()
    assert user["calendar"]["status"] == "needs_reconnect"

    gone = outlook.admin.delete("/api/users/ana/calendar")
    assert gone.status_code == 200
    body = gone.json()
    # The identity platform has no revocation endpoint: the answer says so, honestly.
    assert body["disconnected"] is True and body["revoked"] is False
    assert re.search(r"myapps\.microsoft\.com", body["revokeError"])
    assert outlook.connection("ana") is None
    assert outlook.admin.delete("/api/users/ana/google").status_code == 404
