"""Walking the connect flow as a browser would, with plain HTTP (cookies kept per client)."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import httpx

from tests.harness.app import App


def connect_link(app: App, user_id: str, **options: Any) -> str:
    body = {"json": options} if options else {}
    response = app.admin.post(f"/api/users/{user_id}/connect-link", **body)
    assert response.status_code == 201, response.text
    return str(response.json()["url"])


def start_consent(http: httpx.Client, app: App, link: str, provider: str | None = None) -> str:
    """Open the link, press Connect (of `provider` when the page offers several); the consent
    URL the provider (the emulator) would show."""
    landing = http.get(link)
    assert landing.status_code == 200 and 'id="connect-' in landing.text, landing.text
    start = http.post(landing.url, data={"provider": provider} if provider else None)
    assert start.status_code == 303, start.text
    consent_url = start.headers["location"]
    if provider == "microsoft":
        assert consent_url.startswith(app.emulator.url + "/common/oauth2/v2.0/authorize?")
    else:
        assert consent_url.startswith(app.emulator.url + "/o/oauth2/v2/auth?")
    return consent_url


def sign_in_microsoft(
    http: httpx.Client, app: App, consent_url: str, *, email: str, action: str = "accept"
) -> str:
    """Answer Microsoft's sign-in page; the callback URL it redirects to (not yet visited)."""
    page = http.get(consent_url)
    assert page.status_code == 200, page.text
    form: dict[str, Any] = {
        unescape(k): unescape(v)
        for k, v in re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', page.text)
    }
    form["email"] = email
    form["action"] = action
    decision = http.post(consent_url.split("?")[0], data=form)
    assert decision.status_code in (302, 303), decision.text
    callback_url = str(decision.headers["location"])
    assert callback_url.startswith(app.url + "/oauth/microsoft/callback?")
    return callback_url


def decide(
    http: httpx.Client,
    app: App,
    consent_url: str,
    *,
    email: str,
    action: str = "allow",
    untick: tuple[str, ...] = (),
) -> str:
    """Answer Google's consent page; the callback URL it redirects to (not yet visited)."""
    page = http.get(consent_url)
    assert page.status_code == 200
    form: dict[str, Any] = {
        unescape(k): unescape(v)
        for k, v in re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', page.text)
    }
    scopes = [unescape(s) for s in re.findall(r'name="granted_scope" value="([^"]+)"', page.text)]
    form["granted_scope"] = [s for s in scopes if s not in untick]
    form["email"] = email
    form["action"] = action
    decision = http.post(consent_url.split("?")[0], data=form)
    assert decision.status_code in (302, 303)
    callback_url = str(decision.headers["location"])
    assert callback_url.startswith(app.url + "/oauth/google/callback?")
    return callback_url
