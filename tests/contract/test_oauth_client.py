"""The `OAuthClient` port's refresh contract, on each adapter through its real library.

What a refresh can end in, as the application relies on it: a new access token (and a rotated
refresh token when the provider sends one), `ReconnectRequired` for a dead grant, and
`ServiceMisconfigured` when the provider refuses the deployment's own OAuth client — which the
user cannot fix by reconnecting.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio

from tests.harness.app import CLIENT_ID, CLIENT_SECRET, MS_CLIENT_ID, MS_CLIENT_SECRET, Emulator
from vapi_calendar.ports.oauth import Grant, OAuthClient
from vapi_calendar.providers.google.endpoints import GoogleEndpoints
from vapi_calendar.providers.google.oauth import GoogleOAuth
from vapi_calendar.providers.google.threads import GoogleThreads
from vapi_calendar.providers.microsoft.endpoints import MicrosoftEndpoints
from vapi_calendar.providers.microsoft.http import MicrosoftHttp
from vapi_calendar.providers.microsoft.oauth import SCOPES as MICROSOFT_SCOPES
from vapi_calendar.providers.microsoft.oauth import MicrosoftOAuth
from vapi_calendar.server.config import DEFAULT_SCOPES
from vapi_calendar.support.metrics import Metrics
from vapi_calendar.tools.errors import (
    CalendarUnavailable,
    ReconnectRequired,
    ServiceMisconfigured,
)

EMAIL = "pat@example.com"


@dataclass
class Subject:
    provider: str
    oauth: OAuthClient
    emulator: Emulator
    client_id: str
    mint_tokens: Callable[..., dict[str, Any]]
    revoke_grants: Callable[[str], int]
    reject_client: Callable[[str], None]
    register_client: Callable[[str, str], None]
    rotate: Callable[[], None]  # make a used refresh token stop working

    async def grant(self, client_id: str | None = None) -> Grant:
        minted = await asyncio.to_thread(self.mint_tokens, client_id or self.client_id)
        return Grant(
            access_token=minted["access_token"],
            refresh_token=minted["refresh_token"],
            expiry=datetime.now(UTC) - timedelta(seconds=1),
            scopes=tuple(minted["scope"].split()),
        )


@pytest_asyncio.fixture(params=["google", "microsoft"])
async def subject(request: pytest.FixtureRequest, emulator: Emulator) -> AsyncIterator[Subject]:
    if request.param == "google":
        threads = GoogleThreads(max_workers=2, timeout_seconds=5, metrics=Metrics())
        oauth: OAuthClient = GoogleOAuth(
            endpoints=GoogleEndpoints.for_base(emulator.url),
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            scopes=DEFAULT_SCOPES,
            redirect_uri="http://127.0.0.1:9/oauth/google/callback",
            threads=threads,
        )
        control = emulator.control
        await asyncio.to_thread(control.create_account, EMAIL, "America/New_York")
        try:
            yield Subject(
                "google",
                oauth,
                emulator,
                CLIENT_ID,
                lambda client_id: control.mint_tokens(EMAIL, client_id, DEFAULT_SCOPES, 0),
                control.revoke_grants,
                control.set_client_rejected,
                control.register_client,
                lambda: control.set_rotate_refresh_tokens(True),
            )
        finally:
            threads.shutdown()
        return
    http = MicrosoftHttp(max_connections=2, timeout_seconds=5)
    microsoft = emulator.microsoft
    oauth = MicrosoftOAuth(
        endpoints=MicrosoftEndpoints.for_base(emulator.url, "common"),
        client_id=MS_CLIENT_ID,
        client_secret=MS_CLIENT_SECRET,
        redirect_uri="http://127.0.0.1:9/oauth/microsoft/callback",
        http=http,
    )
    await asyncio.to_thread(microsoft.create_account, EMAIL, "Eastern Standard Time")
    try:
        yield Subject(
            "microsoft",
            oauth,
            emulator,
            MS_CLIENT_ID,
            lambda client_id: microsoft.mint_tokens(EMAIL, client_id, MICROSOFT_SCOPES, 0),
            microsoft.revoke_grants,
            microsoft.set_client_rejected,
            microsoft.register_client,
            lambda: microsoft.configure(retire_used_refresh_tokens=True),
        )
    finally:
        await http.close()


async def test_a_refresh_keeps_the_refresh_token_or_takes_the_rotated_one(
    subject: Subject,
) -> None:
    grant = await subject.grant()
    fresh = await subject.oauth.refresh(grant)
    assert fresh.access_token != grant.access_token
    assert fresh.expiry is not None and fresh.expiry > datetime.now(UTC)
    if subject.provider == "google":
        assert fresh.refresh_token == grant.refresh_token  # Google normally keeps it
    else:
        # Microsoft rotates on every refresh: the answer carries a new one, which is kept.
        assert fresh.refresh_token and fresh.refresh_token != grant.refresh_token

    await asyncio.to_thread(subject.rotate)
    rotated = await subject.oauth.refresh(fresh)
    assert rotated.refresh_token and rotated.refresh_token != fresh.refresh_token
    with pytest.raises(ReconnectRequired):  # the old one was retired at once
        await subject.oauth.refresh(fresh)


async def test_a_dead_grant_needs_a_reconnect(subject: Subject) -> None:
    grant = await subject.grant()
    await asyncio.to_thread(subject.revoke_grants, EMAIL)
    with pytest.raises(ReconnectRequired):
        await subject.oauth.refresh(grant)


async def test_a_rejected_oauth_client_is_the_deployments_fault(subject: Subject) -> None:
    grant = await subject.grant()
    await asyncio.to_thread(subject.reject_client, subject.client_id)
    with pytest.raises(ServiceMisconfigured) as rejected:
        await subject.oauth.refresh(grant)
    assert rejected.value.cause == "invalid_client"
    prefix = subject.provider.upper()
    assert f"{prefix}_CLIENT_ID" in rejected.value.fix
    assert f"{prefix}_CLIENT_SECRET" in rejected.value.fix
    assert not isinstance(rejected.value, ReconnectRequired)


async def test_a_refresh_token_of_another_client_is_refused(
    subject: Subject,
) -> None:
    await asyncio.to_thread(subject.register_client, "old-client", "old-secret")
    if subject.provider == "google":
        with pytest.raises(ServiceMisconfigured) as foreign:
            await subject.oauth.refresh(await subject.grant("old-client"))
        assert foreign.value.cause == "unauthorized_client"
    else:
        # Entra answers invalid_grant (AADSTS70000) for another app's refresh token.
        with pytest.raises(ReconnectRequired):
            await subject.oauth.refresh(await subject.grant("old-client"))


async def test_microsoft_sign_in_again_is_a_reconnect_and_an_outage_is_not(
    emulator: Emulator,
) -> None:
    microsoft = emulator.microsoft
    http = MicrosoftHttp(max_connections=2, timeout_seconds=5)
    oauth = MicrosoftOAuth(
        endpoints=MicrosoftEndpoints.for_base(emulator.url, "organizations"),
        client_id=MS_CLIENT_ID,
        client_secret=MS_CLIENT_SECRET,
        redirect_uri="http://127.0.0.1:9/oauth/microsoft/callback",
        http=http,
    )
    minted = await asyncio.to_thread(microsoft.mint_tokens, EMAIL, MS_CLIENT_ID, MICROSOFT_SCOPES)
    grant = Grant(minted["access_token"], minted["refresh_token"], None, ())
    try:
        # Multi-factor or Conditional Access now wants the person: only a new consent helps.
        await asyncio.to_thread(
            microsoft.add_fault, "entra.token.refresh_token", 400, "interaction_required"
        )
        with pytest.raises(ReconnectRequired):
            await oauth.refresh(grant)
        await asyncio.to_thread(
            microsoft.add_fault, "entra.token.refresh_token", 503, "temporarily_unavailable"
        )
        with pytest.raises(CalendarUnavailable):
            await oauth.refresh(grant)
        assert (await oauth.refresh(grant)).access_token  # the grant itself is fine
        assert await oauth.revoke(grant.refresh_token or "") is not None  # no revocation endpoint
    finally:
        await http.close()
