"""The `OAuthClient` port's refresh contract, on each adapter through its real library.

What a refresh can end in, as the application relies on it: a new access token (and a rotated
refresh token when the provider sends one), `ReconnectRequired` for a dead grant, and
`ServiceMisconfigured` when the provider refuses the deployment's own OAuth client — which the
user cannot fix by reconnecting.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio

from tests.harness.app import CLIENT_ID, CLIENT_SECRET, Emulator
from vapi_calendar.ports.oauth import Grant, OAuthClient
from vapi_calendar.providers.google.endpoints import GoogleEndpoints
from vapi_calendar.providers.google.oauth import GoogleOAuth
from vapi_calendar.providers.google.threads import GoogleThreads
from vapi_calendar.server.config import DEFAULT_SCOPES
from vapi_calendar.support.metrics import Metrics
from vapi_calendar.tools.errors import ReconnectRequired, ServiceMisconfigured

EMAIL = "pat@example.com"


@dataclass
class Subject:
    oauth: OAuthClient
    emulator: Emulator

    async def grant(self, client_id: str = CLIENT_ID) -> Grant:
        minted = await asyncio.to_thread(
            self.emulator.control.mint_tokens, EMAIL, client_id, DEFAULT_SCOPES, 0
        )
        return Grant(
            access_token=minted["access_token"],
            refresh_token=minted["refresh_token"],
            expiry=datetime.now(UTC) - timedelta(seconds=1),
            scopes=tuple(minted["scope"].split()),
        )


@pytest_asyncio.fixture(params=["google"])
async def subject(emulator: Emulator) -> AsyncIterator[Subject]:
    threads = GoogleThreads(max_workers=2, timeout_seconds=5, metrics=Metrics())
    oauth = GoogleOAuth(
        endpoints=GoogleEndpoints.for_base(emulator.url),
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        scopes=DEFAULT_SCOPES,
        redirect_uri="http://127.0.0.1:9/oauth/google/callback",
        threads=threads,
    )
    await asyncio.to_thread(emulator.control.create_account, EMAIL, "America/New_York")
    try:
        yield Subject(oauth, emulator)
    finally:
        threads.shutdown()


async def test_a_refresh_keeps_the_refresh_token_or_takes_the_rotated_one(
    subject: Subject,
) -> None:
    grant = await subject.grant()
    fresh = await subject.oauth.refresh(grant)
    assert fresh.access_token != grant.access_token
    assert fresh.refresh_token == grant.refresh_token
    assert fresh.expiry is not None and fresh.expiry > datetime.now(UTC)

    await asyncio.to_thread(subject.emulator.control.set_rotate_refresh_tokens, True)
    rotated = await subject.oauth.refresh(fresh)
    assert rotated.refresh_token and rotated.refresh_token != fresh.refresh_token
    with pytest.raises(ReconnectRequired):  # the emulator retires the old one at once
        await subject.oauth.refresh(fresh)


async def test_a_dead_grant_needs_a_reconnect(subject: Subject) -> None:
    grant = await subject.grant()
    await asyncio.to_thread(subject.emulator.control.revoke_grants, EMAIL)
    with pytest.raises(ReconnectRequired):
        await subject.oauth.refresh(grant)


async def test_a_rejected_oauth_client_is_the_deployments_fault(subject: Subject) -> None:
    grant = await subject.grant()
    await asyncio.to_thread(subject.emulator.control.set_client_rejected, CLIENT_ID)
    with pytest.raises(ServiceMisconfigured) as rejected:
        await subject.oauth.refresh(grant)
    assert rejected.value.cause == "invalid_client"
    assert "GOOGLE_CLIENT_ID" in rejected.value.fix and "GOOGLE_CLIENT_SECRET" in rejected.value.fix
    assert not isinstance(rejected.value, ReconnectRequired)


async def test_a_refresh_token_of_another_client_is_the_deployments_fault(
    subject: Subject,
) -> None:
    await asyncio.to_thread(subject.emulator.control.register_client, "old-client", "old-secret")
    with pytest.raises(ServiceMisconfigured) as foreign:
        await subject.oauth.refresh(await subject.grant("old-client"))
    assert foreign.value.cause == "unauthorized_client"
