"""The connect flow in real headless Chromium: link → landing → consent (emulator) → callback.

`test_oauth_flow.py` covers every branch with plain HTTP; this module checks what only a real
browser can: the pages render and their buttons work, the landing page's CSP lets the form's
redirect reach the consent page, and the redirect chain ends on the right page with the right
status. It uses Debian's `chromium` (no browser downloads) through Playwright's sync API.

On a developer machine without Chromium (or without the `playwright` package) the module is
skipped; with CI=true it fails instead, so CI can never pass without running it.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"


def _unavailable() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "the `playwright` package is not installed (pip install -e '.[test]')"
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    return None


if (_reason := _unavailable()) is not None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"browser tests cannot run under CI=true: {_reason}", pytrace=False)
    pytest.skip(f"browser tests skipped: {_reason}", allow_module_level=True)

from playwright.sync_api import Browser, Page, sync_playwright  # noqa: E402

from tests.harness.app import App, Emulator, microsoft_settings, running_app  # noqa: E402

PRODUCT = "Ana's Hair Studio"  # an apostrophe, to see the autoescaped name rendered back
ARGS = {"startDateTime": "2031-03-11T09:00:00"}
# Playwright adds `--headless`, `--no-sandbox` and a fresh temporary `--user-data-dir` itself
# (it refuses a `--user-data-dir` argument); the rest keeps Chromium off the network and away
# from a small /dev/shm in containers.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
STEP_TIMEOUT_MS = 10_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=30_000
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh context (no cookies, no cache) per test, on the module's browser."""
    context = browser.new_context(viewport={"width": 900, "height": 800})
    context.set_default_timeout(STEP_TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def zoe(tmp_path: Path, emulator: Emulator) -> Iterator[App]:
    """A server with user `zoe` (no time zone), her assistant, and her Google account."""
    with running_app(tmp_path, emulator, product_name=PRODUCT) as app:
        assert app.admin.post("/api/users", json={"id": "zoe"}).status_code == 201
        app.link("asst_zoe", "zoe")
        emulator.control.create_account("zoe@example.com", timezone="Europe/Berlin")
        yield app


def off_loop(fn: Callable[..., Any], *args: Any) -> Any:
    """Run `fn` in another thread: Playwright's sync API keeps an event loop running in this
    one, so helpers that call `asyncio.run` (like `App.connection`) cannot run here."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(fn, *args).result(timeout=30)


def connect_link(app: App, user_id: str) -> str:
    response = app.admin.post(f"/api/users/{user_id}/connect-link")
    assert response.status_code == 201, response.text
    return response.json()["url"]


def open_consent(page: Page, app: App, user_id: str, shots: Path | None = None) -> None:
    """Open the connect link, check the landing page, click through to the consent page."""
    response = page.goto(connect_link(app, user_id))
    assert response is not None and response.status == 200
    assert page.title() == f"Connect your Google Calendar · {PRODUCT}"
    assert page.locator(".product").inner_text() == PRODUCT
    button = page.locator("#connect-google")
    assert button.is_visible() and button.inner_text() == "Connect Google Calendar"
    if shots:
        page.screenshot(path=shots / "landing.png", full_page=True)
    button.click()
    page.wait_for_url(f"{app.emulator.url}/o/oauth2/v2/auth?**")
    assert page.locator("h1").inner_text() == "Sign in with Google"
    assert page.locator("#email").is_visible() and page.locator("#allow").is_visible()
    if shots:
        page.screenshot(path=shots / "consent.png", full_page=True)


def decide(page: Page, app: App, email: str, button: str) -> int:
    """Fill the consent form, press `button`; return the callback's status once it has loaded."""
    page.fill("#email", email)
    with page.expect_response(lambda r: r.url.startswith(f"{app.url}/oauth/google/callback?")) as r:
        page.click(button)
    page.wait_for_load_state()
    return r.value.status


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert len(data) > 1000 and data.startswith(b"\x89PNG\r\n\x1a\n"), path


def test_connect_in_a_real_browser(page: Page, zoe: App, tmp_path: Path) -> None:
    open_consent(page, zoe, "zoe", shots=tmp_path)
    assert_png(tmp_path / "landing.png")

    assert decide(page, zoe, "zoe@example.com", "#allow") == 200
    assert page.locator("#title").inner_text() == "Your calendar is connected"
    assert "zoe@example.com" in page.locator("#detail").inner_text()
    assert "You can close this tab" in page.locator("main").inner_text()
    assert page.locator("#retry").count() == 0
    page.screenshot(path=tmp_path / "success.png", full_page=True)
    assert_png(tmp_path / "success.png")

    result = zoe.call_tool("checkAvailability", ARGS, assistant_id="asst_zoe")
    assert "error" not in result and "available" in result, result
    assert result["timeZone"] == "Europe/Berlin"  # adopted from the calendar on connect
    user = zoe.admin.get("/api/users/zoe").json()
    assert user["google"] == {
        "connected": True,
        "status": "connected",
        "email": "zoe@example.com",
        "warnings": [],
    }


def test_denied_consent_shows_a_retry_that_leads_back(page: Page, zoe: App, tmp_path: Path) -> None:
    open_consent(page, zoe, "zoe")
    assert decide(page, zoe, "zoe@example.com", "#deny") == 403
    assert "not connected" in page.locator("main").inner_text()
    retry = page.locator("#retry")
    assert retry.is_visible() and retry.inner_text() == "Try again"
    page.screenshot(path=tmp_path / "denied.png", full_page=True)
    assert_png(tmp_path / "denied.png")
    assert off_loop(zoe.connection, "zoe") is None

    retry.click()
    page.wait_for_url(f"{zoe.url}/connect/**")
    assert page.locator("#connect-google").is_visible()


def test_replayed_callback_is_refused_and_changes_nothing(page: Page, zoe: App) -> None:
    open_consent(page, zoe, "zoe")
    assert decide(page, zoe, "zoe@example.com", "#allow") == 200
    callback_url = page.url
    assert callback_url.startswith(f"{zoe.url}/oauth/google/callback?")
    stored = off_loop(zoe.connection, "zoe")
    assert stored is not None and stored.status == "connected"

    again = page.goto(callback_url)
    assert again is not None and again.status == 400
    assert "expired or was already used" in page.locator("main").inner_text()
    assert page.locator("#title").inner_text() != "Your calendar is connected"
    assert off_loop(zoe.connection, "zoe") == stored


def test_a_consent_finished_in_another_browser_changes_nothing(browser: Browser, zoe: App) -> None:
    """Login CSRF: Mallory presses Connect on her own link, then gets the victim to approve
    Google's consent page in the victim's browser. The callback arrives without the cookie of
    the browser that started it, so the victim's calendar is not bound to Mallory's user."""
    mallory = browser.new_context()
    victim = browser.new_context()
    try:
        attacker = mallory.new_page()
        open_consent(attacker, zoe, "zoe")
        consent_url = attacker.url  # Mallory stops here and sends this URL to the victim

        page = victim.new_page()
        page.goto(consent_url)
        assert decide(page, zoe, "victim@example.com", "#allow") == 400
        assert page.locator("#title").inner_text() == "Please connect in the browser you started in"
        assert page.locator("#retry").count() == 0
        assert off_loop(zoe.connection, "zoe") is None
    finally:
        mallory.close()
        victim.close()


def test_a_used_link_shows_a_clear_page_and_no_new_link(page: Page, zoe: App) -> None:
    link = connect_link(zoe, "zoe")
    response = page.goto(link)
    assert response is not None and response.status == 200
    page.locator("#connect-google").click()
    page.wait_for_url(f"{zoe.emulator.url}/o/oauth2/v2/auth?**")
    assert decide(page, zoe, "zoe@example.com", "#allow") == 200

    again = page.goto(link)
    assert again is not None and again.status == 410
    assert page.locator("#title").inner_text() == "This link was already used"
    assert page.locator("#connect-google").count() == 0 and page.locator("#retry").count() == 0


@pytest.fixture
def zoe_outlook(tmp_path: Path, emulator: Emulator) -> Iterator[App]:
    """A server offering Google and Microsoft 365, user `zoe` (no time zone), her assistant,
    and her Microsoft account (mailbox zone as Outlook keeps it: a Windows name)."""
    settings = {"product_name": PRODUCT, **microsoft_settings(emulator.url)}
    with running_app(tmp_path, emulator, **settings) as app:
        assert app.admin.post("/api/users", json={"id": "zoe"}).status_code == 201
        app.link("asst_zoe", "zoe")
        emulator.microsoft.create_account("zoe@contoso.com", timezone="Tokyo Standard Time")
        yield app


def test_connect_microsoft_in_a_real_browser(page: Page, zoe_outlook: App, tmp_path: Path) -> None:
    app = zoe_outlook
    response = page.goto(connect_link(app, "zoe"))
    assert response is not None and response.status == 200
    assert page.title() == f"Connect your calendar · {PRODUCT}"
    assert page.locator("#connect-google").inner_text() == "Connect Google Calendar"
    button = page.locator("#connect-microsoft")
    assert button.is_visible() and button.inner_text() == "Connect Microsoft 365 / Outlook"
    page.screenshot(path=tmp_path / "landing.png", full_page=True)
    assert_png(tmp_path / "landing.png")

    button.click()
    page.wait_for_url(f"{app.emulator.url}/common/oauth2/v2.0/authorize?**")
    assert page.locator("h1").inner_text() == "Sign in"
    assert "full access to your calendars" in page.locator("#permissions").inner_text()
    page.screenshot(path=tmp_path / "sign-in.png", full_page=True)
    page.fill("#email", "zoe@contoso.com")
    callback = f"{app.url}/oauth/microsoft/callback?"
    with page.expect_response(lambda r: r.url.startswith(callback)) as answered:
        page.click("#accept")
    page.wait_for_load_state()
    assert answered.value.status == 200
    assert page.locator("#title").inner_text() == "Your calendar is connected"
    assert "zoe@contoso.com" in page.locator("#detail").inner_text()
    assert "Outlook calendar" in page.locator("#detail").inner_text()
    page.screenshot(path=tmp_path / "success.png", full_page=True)
    assert_png(tmp_path / "success.png")

    result = app.call_tool("checkAvailability", ARGS, assistant_id="asst_zoe")
    assert "error" not in result and result["timeZone"] == "Asia/Tokyo", result
    user = app.admin.get("/api/users/zoe").json()
    assert user["calendar"]["provider"] == "microsoft" and user["calendar"]["connected"]


def test_a_cancelled_microsoft_sign_in_offers_a_retry(page: Page, zoe_outlook: App) -> None:
    app = zoe_outlook
    page.goto(connect_link(app, "zoe"))
    page.locator("#connect-microsoft").click()
    page.wait_for_url(f"{app.emulator.url}/common/oauth2/v2.0/authorize?**")
    callback = f"{app.url}/oauth/microsoft/callback?"
    with page.expect_response(lambda r: r.url.startswith(callback)) as answered:
        page.click("#cancel")
    page.wait_for_load_state()
    assert answered.value.status == 403
    assert off_loop(app.connection, "zoe") is None
    page.locator("#retry").click()
    page.wait_for_url(f"{app.url}/connect/**")
    assert page.locator("#connect-microsoft").is_visible()
