"""Each user's grant: sealed at rest, fresh when used, refreshed exactly once at a time.

Refresh policy:
- A token expiring within `margin` is refreshed before the call, so the calendar request itself
  never waits for the token endpoint.
- Concurrent calls for one user share one refresh: an in-process single flight, and a store
  lease across processes. Whoever waits re-reads the store afterwards instead of refreshing
  again.
- A token the calendar API refuses (revoked early) is refreshed only if the stored grant is
  still the one that failed; otherwise the newer stored token is used.
- The refreshed grant (with a rotated refresh token, if any) is stored in one write before it
  is used.
- A dead grant (`ReconnectRequired` from the provider) marks the user `needs_reconnect`, tells
  the integrator, and nothing retries it.
- A refused OAuth client (`ServiceMisconfigured`: the provider rejects this deployment's own
  client, e.g. Google's `invalid_client`) is nobody's grant problem: no user is flagged; the
  process raises an alarm instead (one error log line naming the settings to fix, a metric,
  `/readyz` detail via `client_alarms`, per provider) that clears at the next successful
  refresh with that provider. The alarm
  lives here, per process, not in the store: it is a fact about this process's configuration
  (replicas can differ during a rollout, and each one's readiness should say its own), a
  restart with fixed settings starts clean, and nothing needs clearing across replicas.
- Tokens of users active within `ACTIVE_WINDOW_SECONDS` are refreshed ahead of time by a
  background task (`refresh_ahead`, through the same single flight), before a call would have
  to; the `path` label of the refresh metric tells the paths apart.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from vapi_calendar.oauth.readability import CalendarReadability
from vapi_calendar.oauth.registry import Providers, UnknownProvider
from vapi_calendar.oauth.vault import TokenVault, VaultError
from vapi_calendar.ports.calendar import CalendarProvider
from vapi_calendar.ports.events import ConnectionEvents
from vapi_calendar.ports.locks import LockTimeout
from vapi_calendar.ports.oauth import Grant
from vapi_calendar.ports.stores import (
    CONNECTED,
    GOOGLE,
    NEEDS_RECONNECT,
    Connection,
    ConnectionStore,
)
from vapi_calendar.support.budget import remaining
from vapi_calendar.support.leases import Leases
from vapi_calendar.support.metrics import Metrics
from vapi_calendar.tools.errors import (
    CalendarNotConnected,
    CalendarUnavailable,
    ReconnectRequired,
    ServiceMisconfigured,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

REFRESH_LEASE_SECONDS = 30.0
# A refresh that failed for a passing reason is tried this many times in all, and again only
# while the call's budget has this much left (google-auth already retries within one attempt).
REFRESH_ATTEMPTS = 3
RETRY_RESERVE_SECONDS = 2.0
# A user counts as active (worth refreshing ahead of time) this long after their last call.
ACTIVE_WINDOW_SECONDS = 3600.0
_BACKGROUND_PARALLEL = 4


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class ClientAlarm:
    """The provider's token endpoint refuses this process's OAuth client."""

    cause: str  # the provider's word, e.g. "invalid_client"
    since: datetime


def seal(
    vault: TokenVault,
    user_id: str,
    grant: Grant,
    *,
    email: str | None,
    subject: str | None,
    status: str = CONNECTED,
    provider: str = GOOGLE,
) -> Connection:
    """Encrypt a grant into its stored form, each token bound to its user and purpose."""
    return Connection(
        user_id=user_id,
        access_token=vault.encrypt(grant.access_token, context=f"access:{user_id}"),
        refresh_token=(
            vault.encrypt(grant.refresh_token, context=f"refresh:{user_id}")
            if grant.refresh_token
            else None
        ),
        expiry=grant.expiry,
        scopes=grant.scopes,
        email=email,
        subject=subject,
        status=status,
        updated_at=_utcnow(),
        provider=provider,
    )


def unseal_access_token(vault: TokenVault, connection: Connection) -> str:
    """The one token a tool call needs: the refresh token stays sealed until a refresh."""
    return vault.decrypt(connection.access_token, context=f"access:{connection.user_id}")


def unseal(vault: TokenVault, connection: Connection) -> Grant:
    """The plaintext grant; `VaultError` when no configured key can read it."""
    user_id = connection.user_id
    return Grant(
        access_token=unseal_access_token(vault, connection),
        refresh_token=(
            vault.decrypt(connection.refresh_token, context=f"refresh:{user_id}")
            if connection.refresh_token
            else None
        ),
        expiry=connection.expiry,
        scopes=connection.scopes,
    )


class Grants:
    def __init__(
        self,
        *,
        store: ConnectionStore,
        vault: TokenVault,
        providers: Providers,
        leases: Leases,
        events: ConnectionEvents,
        metrics: Metrics,
        refresh_margin: timedelta,
        lease_wait_seconds: float = 10.0,
    ) -> None:
        self._store = store
        self._vault = vault
        self._providers = providers
        self._leases = leases
        self._events = events
        self._metrics = metrics
        self._margin = refresh_margin
        self._lease_wait = lease_wait_seconds
        self._inflight: dict[str, asyncio.Task[Grant]] = {}
        self._active: dict[str, float] = {}  # user id -> monotonic time of the last call
        self._client_alarms: dict[str, ClientAlarm] = {}

    @property
    def client_alarms(self) -> dict[str, ClientAlarm]:
        """By provider: set while the last refresh this process tried with that provider was
        refused for its OAuth client."""
        return dict(self._client_alarms)

    async def store_grant(
        self,
        user_id: str,
        grant: Grant,
        *,
        email: str | None,
        subject: str | None,
        provider: str = GOOGLE,
    ) -> None:
        await self._store.save_connection(
            seal(self._vault, user_id, grant, email=email, subject=subject, provider=provider)
        )

    def _open(self, connection: Connection) -> Grant:
        return self._unsealed(connection, unseal)

    def _unsealed(self, connection: Connection, read: Callable[[TokenVault, Connection], T]) -> T:
        try:
            return read(self._vault, connection)
        except VaultError:
            # Wrong or missing key: the stored grant is unusable until the owner reconnects
            # (or the operator restores the key). Say so without detail.
            log.error(
                "stored tokens for a user cannot be decrypted",
                extra={"user_id": connection.user_id},
            )
            raise ReconnectRequired() from None

    def _fresh(self, connection: Connection, margin: timedelta | None = None) -> bool:
        margin = self._margin if margin is None else margin
        return connection.expiry is None or connection.expiry - margin > _utcnow()

    async def _load(self, user_id: str) -> Connection:
        return self._usable(await self._store.get_connection(user_id))

    @staticmethod
    def _usable(connection: Connection | None) -> Connection:
        if connection is None:
            raise CalendarNotConnected()
        if connection.status == NEEDS_RECONNECT:
            raise ReconnectRequired()
        return connection

    # -- getting a usable grant -----------------------------------------------------------------
    async def fresh_connection(
        self, user_id: str, stored: Connection | None
    ) -> tuple[str, Connection]:
        """The user's access token, refreshed first if it expires within the margin, with the
        connection as stored (email, warnings): `stored`, which the caller read with the user
        in one round trip (None: not connected)."""
        self._active[user_id] = time.monotonic()
        connection = self._usable(stored)
        if self._fresh(connection):
            return self._unsealed(connection, unseal_access_token), connection
        grant = await self._single_flight(user_id, "call", margin=self._margin)
        return grant.access_token, connection

    async def after_rejection(self, user_id: str, token: str) -> Grant:
        """`token` was refused by the calendar API: refresh, unless someone already did."""
        return await self._single_flight(user_id, "rejected", rejected=token)

    async def _single_flight(
        self,
        user_id: str,
        path: str,
        *,
        margin: timedelta | None = None,
        rejected: str | None = None,
    ) -> Grant:
        """Join (or start) the user's one refresh. A refresh that failed for a passing reason
        (the token endpoint unreachable or busy) is tried again while this call's budget still
        has room: it fails for every caller waiting on it, and most of them could still be
        answered. A dead grant or a refused OAuth client is final at once."""
        for attempt in range(REFRESH_ATTEMPTS):
            try:
                return await self._join(user_id, path, margin, rejected)
            except CalendarUnavailable:
                left = remaining()
                if attempt == REFRESH_ATTEMPTS - 1 or left is None or left < RETRY_RESERVE_SECONDS:
                    raise
                await asyncio.sleep(random.uniform(0, 0.2))  # noqa: S311 - jitter, not crypto
        raise AssertionError("unreachable")  # pragma: no cover

    async def _join(
        self, user_id: str, path: str, margin: timedelta | None, rejected: str | None
    ) -> Grant:
        task = self._inflight.get(user_id)
        if task is None:
            # One refresh task per user; callers only await it (shielded), so a caller that hangs
            # up does not cancel the refresh the others are waiting for.
            task = asyncio.create_task(self._refresh_once(user_id, path, margin, rejected))
            self._inflight[user_id] = task
            task.add_done_callback(lambda _: self._inflight.pop(user_id, None))
        return await asyncio.shield(task)

    async def _refresh_once(
        self, user_id: str, path: str, margin: timedelta | None, rejected: str | None
    ) -> Grant:
        """Refresh under the cross-process lease, or adopt the refresh another process did."""
        try:
            async with self._leases.hold(
                f"refresh:{user_id}",
                wait_seconds=self._lease_wait,
                ttl_seconds=REFRESH_LEASE_SECONDS,
                owner=user_id,
            ):
                connection = await self._load(user_id)  # re-read: someone may have refreshed
                current = self._open(connection)
                if rejected is not None and current.access_token != rejected:
                    return current
                if rejected is None and self._fresh(connection, margin):
                    return current
                if not current.refresh_token:
                    await self.mark_needs_reconnect(user_id)
                    raise ReconnectRequired()
                refreshed = await self._refresh(user_id, current, path, connection.provider)
                await self._persist(user_id, refreshed, connection)
                return refreshed
        except LockTimeout:
            raise CalendarUnavailable() from None

    async def _refresh(self, user_id: str, grant: Grant, path: str, provider: str) -> Grant:
        outcome = "ok"
        try:
            try:
                oauth = self._providers.get(provider).oauth
            except UnknownProvider:
                # Connected with a provider this deployment no longer offers: nothing to
                # refresh with until the operator configures it again.
                raise ServiceMisconfigured(
                    cause="provider_not_configured",
                    fix=f"configure the {provider} OAuth client, or have the user reconnect",
                ) from None
            refreshed = await oauth.refresh(grant)
        except ReconnectRequired:
            outcome = "invalid_grant"
            await self.mark_needs_reconnect(user_id)
            raise
        except ServiceMisconfigured as exc:
            outcome = "client_rejected"
            self._client_rejected(provider, exc)
            raise
        except CalendarUnavailable:
            outcome = "failed"
            raise
        finally:
            self._metrics.refreshes.labels(path=path, outcome=outcome).inc()
            log.info("token refresh", extra={"user_id": user_id, "path": path, "outcome": outcome})
        self._client_accepted(provider)
        return refreshed

    def _client_rejected(self, provider: str, exc: ServiceMisconfigured) -> None:
        alarm = self._client_alarms.get(provider)
        if alarm is not None and alarm.cause == exc.cause:
            return  # said once; the metric and /readyz keep saying it
        self._client_alarms[provider] = ClientAlarm(exc.cause, _utcnow())
        self._metrics.oauth_client_rejected.set(1)
        log.error(
            "the calendar provider (%s) refuses this server's OAuth client (%s): %s. Every "
            "token refresh with it fails until it is fixed; no user is asked to reconnect "
            "for it.",
            provider,
            exc.cause,
            exc.fix or "check the OAuth client settings",
        )

    def _client_accepted(self, provider: str) -> None:
        if self._client_alarms.pop(provider, None) is None:
            return
        log.warning("the calendar provider (%s) accepts this server's OAuth client again", provider)
        self._metrics.oauth_client_rejected.set(1 if self._client_alarms else 0)

    async def _persist(self, user_id: str, grant: Grant, previous: Connection) -> None:
        """Store a refreshed grant (with a rotated refresh token, if any) in one write."""
        latest = await self._store.get_connection(user_id)
        if latest is None:
            return  # disconnected meanwhile: do not resurrect the grant
        sealed = seal(
            self._vault,
            user_id,
            grant,
            email=previous.email,
            subject=previous.subject,
            provider=previous.provider,
        )
        await self._store.save_connection(
            replace(sealed, status=previous.status, warnings=latest.warnings)
        )

    async def refresh_ahead(self, horizon: timedelta) -> int:
        """Refresh tokens of recently active users that expire within margin + `horizon`.

        Run periodically (every `horizon / 2` or more often) this keeps every active user's
        token outside the hot-path margin, so tool calls never wait for the token endpoint.
        Returns how many were refreshed.
        """
        now = time.monotonic()
        for user_id, seen in list(self._active.items()):
            if now - seen > ACTIVE_WINDOW_SECONDS:
                self._active.pop(user_id, None)
        margin = self._margin + horizon
        gate = asyncio.Semaphore(_BACKGROUND_PARALLEL)  # leave threads for tool calls

        async def one(user_id: str) -> bool:
            async with gate:
                try:
                    connection = await self._load(user_id)
                    if self._fresh(connection, margin):
                        return False
                    await self._single_flight(user_id, "background", margin=margin)
                    return True
                except Exception:  # one failed user must not stop the others (refresh logs why)
                    self._active.pop(user_id, None)
                    return False

        done = await asyncio.gather(*(one(user_id) for user_id in list(self._active)))
        return sum(done)

    async def rotate_encryption(self) -> tuple[int, list[str]]:
        """Re-encrypt every stored grant under the primary key.

        Returns how many grants changed and the users whose grants no configured key can read
        (left untouched, so putting the missing key back and running again still works).
        Each user is rewritten under their refresh lease, so a refresh in another process
        cannot be overwritten by the older token being re-encrypted here.
        """
        rotated, unreadable = 0, []
        for stale in await self._store.list_connections():
            if not any(
                token and self._vault.needs_rotation(token)
                for token in (stale.access_token, stale.refresh_token)
            ):
                continue
            user_id = stale.user_id
            async with self._leases.hold(
                f"refresh:{user_id}",
                wait_seconds=30,
                ttl_seconds=REFRESH_LEASE_SECONDS,
                owner=user_id,
            ):
                current = await self._store.get_connection(user_id)
                if current is None:
                    continue
                try:
                    grant = unseal(self._vault, current)
                except VaultError:
                    unreadable.append(user_id)
                    continue
                sealed = seal(
                    self._vault,
                    user_id,
                    grant,
                    email=current.email,
                    subject=current.subject,
                    provider=current.provider,
                )
                await self._store.save_connection(
                    replace(
                        sealed,
                        status=current.status,
                        updated_at=current.updated_at,
                        warnings=current.warnings,
                    )
                )
                rotated += 1
        return rotated, unreadable

    async def mark_needs_reconnect(self, user_id: str) -> None:
        connection = await self._store.get_connection(user_id)
        if connection is None or connection.status == NEEDS_RECONNECT:
            return
        log.warning(
            "calendar grant revoked or expired; user must reconnect", extra={"user_id": user_id}
        )
        await self._store.set_connection_status(user_id, NEEDS_RECONNECT)
        self._events.publish("needs_reconnect", user_id, email=connection.email)


class UserTokens:
    """One call's view of a user's tokens (`ports.calendar.TokenSource`)."""

    def __init__(self, grants: Grants, user_id: str, access_token: str) -> None:
        self._grants = grants
        self._user_id = user_id
        self._access_token = access_token
        self._renewed = False

    async def access_token(self) -> str:
        return self._access_token

    async def rejected(self, token: str) -> str:
        if self._renewed:
            # Even a token obtained after the rejection is refused: the grant is unusable.
            await self._grants.mark_needs_reconnect(self._user_id)
            raise ReconnectRequired()
        self._renewed = True
        self._access_token = (await self._grants.after_rejection(self._user_id, token)).access_token
        return self._access_token


class ConnectedCalendars:
    """Opens a connected user's calendar (`ports.calendar.CalendarAccess`) with the provider
    the user connected, watched for calendars it cannot read when `readability` is given."""

    def __init__(
        self,
        grants: Grants,
        providers: Providers,
        readability: CalendarReadability | None = None,
    ) -> None:
        self._grants = grants
        self._providers = providers
        self._readability = readability

    async def open(self, user_id: str, stored: Connection | None) -> CalendarProvider:
        access_token, connection = await self._grants.fresh_connection(user_id, stored)
        try:
            client = self._providers.get(connection.provider).calendars
        except UnknownProvider:
            log.error(
                "a user is connected with a calendar provider that is not configured",
                extra={"user_id": user_id, "provider": connection.provider},
            )
            raise ServiceMisconfigured(
                cause="provider_not_configured",
                fix=f"configure the {connection.provider} OAuth client",
            ) from None
        calendar = client.for_user(UserTokens(self._grants, user_id, access_token))
        if self._readability is None:
            return calendar
        return self._readability.watch(calendar, connection)
