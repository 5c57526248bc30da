"""Access tokens: refreshed ahead of expiry, once, persisted encrypted; revoked grants flagged."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.harness import mongo
from tests.harness.app import App

ARGS = {"startDateTime": "2031-03-11T09:00:00"}


def refreshes(app: App) -> int:
    return app.emulator.control.requests().get("token.refresh_token", 0)


def test_expired_access_token_is_refreshed_and_persisted(app: App) -> None:
    app.connect_google("ana", "ana@example.com", expires_in=0)
    before = app.connection("ana")

    assert "available" in app.call_tool("checkAvailability", ARGS)
    assert refreshes(app) == 1

    after = app.connection("ana")
    assert after.expiry > before.expiry
    new_token = app.vault.decrypt(after.access_token, context="access:ana")
    old_token = app.vault.decrypt(before.access_token, context="access:ana")
    assert new_token != old_token
    # The refresh token survives a refresh that does not return a new one.
    assert app.vault.decrypt(after.refresh_token, context="refresh:ana") == app.vault.decrypt(
        before.refresh_token, context="refresh:ana"
    )

    # Steady state: the next call uses the stored token without refreshing.
    assert "available" in app.call_tool("checkAvailability", ARGS)
    assert refreshes(app) == 1


def test_token_expiring_within_the_margin_is_refreshed_before_the_call(app: App) -> None:
    app.connect_google("ana", "ana@example.com", expires_in=120)  # margin is 300 s
    assert "available" in app.call_tool("checkAvailability", ARGS)
    assert refreshes(app) == 1
    assert app.emulator.control.requests().get("freebusy") == 1  # no 401 + retry


def test_concurrent_calls_share_one_refresh(app: App) -> None:
    app.connect_google("ana", "ana@example.com", expires_in=0)
    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(
            pool.map(
                lambda i: app.call_tool("checkAvailability", ARGS, tool_call_id=f"c{i}"),
                range(20),
            )
        )
    assert all("available" in r for r in results), results
    assert refreshes(app) == 1


def test_rotated_refresh_token_is_stored(app: App) -> None:
    app.emulator.control.set_rotate_refresh_tokens(True)
    app.connect_google("ana", "ana@example.com", expires_in=0)
    before = app.vault.decrypt(app.connection("ana").refresh_token, context="refresh:ana")
    assert "available" in app.call_tool("checkAvailability", ARGS)
    after = app.vault.decrypt(app.connection("ana").refresh_token, context="refresh:ana")
    assert after != before


def test_token_revoked_at_google_mid_life_is_refreshed_on_401(app: App) -> None:
    # The stored token looks fresh, but Google expired it early: AuthorizedHttp refreshes once
    # on the 401 and we must persist what it got.
    app.emulator.control.expire_access_tokens("ana@example.com")
    before = app.connection("ana").access_token
    assert "available" in app.call_tool("checkAvailability", ARGS)
    assert refreshes(app) == 1
    assert app.connection("ana").access_token != before


def test_invalid_grant_flags_reconnect_and_stops_retrying(app: App) -> None:
    app.connect_google("ana", "ana@example.com", expires_in=0)
    app.emulator.control.revoke_grants("ana@example.com")

    result = app.call_tool("checkAvailability", ARGS)
    assert "renewed" in result["error"]
    user = app.admin.get("/api/users/ana").json()
    assert user["google"] == {
        "connected": False,
        "status": "needs_reconnect",
        "email": "ana@example.com",
        "warnings": [],
    }
    attempts = refreshes(app)
    assert "renewed" in app.call_tool("checkAvailability", ARGS)["error"]
    assert refreshes(app) == attempts  # nothing retries a dead grant


def test_tokens_are_not_stored_in_plaintext(app: App, tmp_path: Path) -> None:
    app.connect_google("ana", "ana@example.com", expires_in=0)
    app.call_tool("checkAvailability", ARGS)  # a refresh writes a new token too
    connection = app.connection("ana")
    access = app.vault.decrypt(connection.access_token, context="access:ana")
    refresh = app.vault.decrypt(connection.refresh_token, context="refresh:ana")
    if app.settings.database_url.startswith("mongodb"):
        raw = mongo.raw_bytes(app.settings.database_url)
    else:
        raw = b"".join(p.read_bytes() for p in (tmp_path / "data").glob("app.db*"))
    assert raw, "the database should hold data"
    for secret in (access, refresh):
        assert secret.encode() not in raw


def test_arguments_are_checked_before_any_token_is_refreshed(app: App) -> None:
    app.connect_google("ana", "ana@example.com", expires_in=0)  # due for a refresh
    result = app.call_tool("checkAvailability", {"durationMinutes": 2})
    assert result == {"error": "I need startDateTime to do that."}
    assert refreshes(app) == 0
    assert app.emulator.control.requests() == {}


def test_early_revocation_under_rotation_refreshes_once_for_sixteen_calls(app: App) -> None:
    """Google refuses the stored token before its expiry while every refresh rotates the refresh
    token (the old one dies): the calls share one refresh, none fails, nobody must reconnect."""
    app.emulator.control.set_rotate_refresh_tokens(True)
    app.emulator.control.expire_access_tokens("ana@example.com")
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(
            pool.map(
                lambda i: app.call_tool("checkAvailability", ARGS, tool_call_id=f"r{i}"),
                range(16),
            )
        )
    assert all("available" in r for r in results), results
    assert refreshes(app) == 1
    connection = app.connection("ana")
    assert connection is not None and connection.status == "connected"
    # The rotated refresh token was stored with its access token: the next refresh works.
    app.emulator.control.expire_access_tokens("ana@example.com")
    assert "available" in app.call_tool("checkAvailability", ARGS, tool_call_id="later")
    assert refreshes(app) == 2


def test_a_call_holding_an_already_replaced_token_does_not_refresh_again(app: App) -> None:
    app.emulator.control.set_rotate_refresh_tokens(True)
    app.emulator.control.expire_access_tokens("ana@example.com")
    assert "available" in app.call_tool("checkAvailability", ARGS, tool_call_id="first")
    assert refreshes(app) == 1
    # A second wave of refusals of the *old* token (calls that loaded it earlier) finds the
    # stored grant already replaced and simply uses the new token.
    assert "available" in app.call_tool("checkAvailability", ARGS, tool_call_id="second")
    assert refreshes(app) == 1


def test_a_refresh_that_fails_for_a_passing_reason_is_tried_again_within_the_budget(
    app: App,
) -> None:
    """google-auth tries the token endpoint three times itself; when all three fail (503), the
    call's budget still has room, so the refresh is tried once more rather than every waiting
    call hearing "not responding"."""
    app.connect_google("ana", "ana@example.com", expires_in=0)
    app.emulator.control.add_fault("token.refresh_token", 503, times=3)
    assert "available" in app.call_tool("checkAvailability", ARGS)
    assert refreshes(app) == 4
    connection = app.connection("ana")
    assert connection is not None and connection.status == "connected"
