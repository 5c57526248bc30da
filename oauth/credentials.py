"""Fresh Google credentials for a user, refreshed ahead of expiry, exactly once at a time.

Refresh policy:
- A token expiring within `margin` is refreshed before the call, so the Google request itself
  never waits for the token endpoint (google-auth's own threshold is 3 min 45 s; the default
  margin is larger, so `AuthorizedHttp` never has to refresh behind our back).
- Concurrent calls for one user share one refresh: an in-process single flight, and a store lease
  across processes. Whoever waits re-reads the store afterwards instead of refreshing again.
- The refreshed token is persisted before it is used; a rotated refresh token is stored too.
- `invalid_grant` marks the user `needs_reconnect`, and nothing retries it.
- Tokens of users active within `ACTIVE_WINDOW` are refreshed ahead of time by a background
  task (`refresh_ahead`, through the same single flight), before a call would have to; the
  `path` label of the refresh metric tells the two apart.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import google_auth_httplib2
from google.auth.exceptions import RefreshError, TransportError
from google.oauth2.credentials import Credentials

from oauth.endpoints import GoogleEndpoints
from oauth.notify import ConnectionNotifier
from oauth.transport import GoogleThreads
from oauth.vault import TokenVault, VaultError
from server import metrics
from server.store import GoogleConnection, Store
from server.store.locks import hold_lease
from tools.errors import CalendarNotConnected, CalendarUnavailable, ReconnectRequired

log = logging.getLogger(__name__)

NEEDS_RECONNECT = "needs_reconnect"
CONNECTED = "connected"
_LEASE_TTL_SECONDS = 30.0
_POLL_SECONDS = 0.05
# A user counts as active (worth refreshing ahead of time) this long after their last call.
ACTIVE_WINDOW_SECONDS = 3600.0
_BACKGROUND_PARALLEL = 4


def _utcnow() -> datetime:
    return datetime.now(UTC)


def is_invalid_grant(exc: RefreshError) -> bool:
    """google-auth puts the token endpoint's JSON body in args[1]."""
    detail = exc.args[1] if len(exc.args) > 1 else None
    return isinstance(detail, dict) and detail.get("error") == "invalid_grant"


@dataclass(frozen=True, slots=True)
class Grant:
    """Plaintext tokens as they come from Google; only ever held in memory."""

    access_token: str
    refresh_token: str | None
    expiry: datetime | None  # aware UTC
    scopes: tuple[str, ...]


def seal_grant(
    vault: TokenVault, user_id: str, grant: Grant, *, email: str | None, subject: str | None
) -> GoogleConnection:
    """Encrypt a grant into its stored form, each token bound to its user and purpose."""
    return GoogleConnection(
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
        status=CONNECTED,
        updated_at=_utcnow(),
    )


class CredentialsProvider:
    def __init__(
        self,
        *,
        store: Store,
        vault: TokenVault,
        threads: GoogleThreads,
        endpoints: GoogleEndpoints,
        client_id: str,
        client_secret: str,
        refresh_margin: timedelta,
        notifier: ConnectionNotifier | None = None,
        lease_wait_seconds: float = 10.0,
    ) -> None:
        self._notifier = notifier
        self._store = store
        self._vault = vault
        self._threads = threads
        self._endpoints = endpoints
        self._client_id = client_id
        self._client_secret = client_secret
        self._margin = refresh_margin
        self._lease_wait = lease_wait_seconds
        self._holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._inflight: dict[str, asyncio.Task[Credentials]] = {}
        self._active: dict[str, float] = {}  # user id -> monotonic time of the last call

    async def store_grant(
        self, user_id: str, grant: Grant, *, email: str | None, subject: str | None
    ) -> None:
        await self._store.save_connection(
            seal_grant(self._vault, user_id, grant, email=email, subject=subject)
        )

    def _open(self, connection: GoogleConnection) -> Credentials:
        user_id = connection.user_id
        try:
            token = self._vault.decrypt(connection.access_token, context=f"access:{user_id}")
            refresh = (
                self._vault.decrypt(connection.refresh_token, context=f"refresh:{user_id}")
                if connection.refresh_token
                else None
            )
        except VaultError:
            # Wrong or missing key: the stored grant is unusable until the owner reconnects
            # (or the operator restores the key). Say so without detail.
            log.error("stored tokens for a user cannot be decrypted", extra={"user_id": user_id})
            raise ReconnectRequired() from None
        return Credentials(
            token,
            refresh_token=refresh,
            token_uri=self._endpoints.token_uri,
            client_id=self._client_id,
            client_secret=self._client_secret,
            scopes=list(connection.scopes),
            # google-auth compares expiry with a naive UTC "now".
            expiry=connection.expiry.astimezone(UTC).replace(tzinfo=None)
            if connection.expiry
            else None,
        )

    def _fresh(self, connection: GoogleConnection, margin: timedelta | None = None) -> bool:
        margin = self._margin if margin is None else margin
        return connection.expiry is None or connection.expiry - margin > _utcnow()

    # -- getting credentials -----------------------------------------------------------------
    async def credentials_for(self, user_id: str) -> Credentials:
        self._active[user_id] = time.monotonic()
        connection = await self._load(user_id)
        if self._fresh(connection):
            return self._open(connection)
        return await self._single_flight(user_id, self._margin, "call")

    async def _single_flight(self, user_id: str, margin: timedelta, path: str) -> Credentials:
        task = self._inflight.get(user_id)
        if task is None:
            # One refresh task per user; callers only await it (shielded), so a caller that hangs
            # up does not cancel the refresh the others are waiting for.
            task = asyncio.create_task(self._refresh_once(user_id, margin, path))
            self._inflight[user_id] = task
            task.add_done_callback(lambda _: self._inflight.pop(user_id, None))
        return await asyncio.shield(task)

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
                    await self._single_flight(user_id, margin, "background")
                    return True
                except Exception:  # one failed user must not stop the others (refresh logs why)
                    self._active.pop(user_id, None)
                    return False

        done = await asyncio.gather(*(one(user_id) for user_id in list(self._active)))
        return sum(done)

    async def _load(self, user_id: str) -> GoogleConnection:
        connection = await self._store.get_connection(user_id)
        if connection is None:
            raise CalendarNotConnected()
        if connection.status == NEEDS_RECONNECT:
            raise ReconnectRequired()
        return connection

    async def _refresh_once(
        self, user_id: str, margin: timedelta | None = None, path: str = "call"
    ) -> Credentials:
        """Refresh under the cross-process lease, or adopt the refresh another process did."""
        lease = f"refresh:{user_id}"
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + self._lease_wait
        while not await self._store.acquire_lease(lease, self._holder, _LEASE_TTL_SECONDS):
            await asyncio.sleep(_POLL_SECONDS)
            connection = await self._load(user_id)
            if self._fresh(connection, margin):
                return self._open(connection)
            if loop.time() > deadline:
                raise CalendarUnavailable()
        metrics.LOCK_WAIT_SECONDS.labels(lock="refresh").observe(loop.time() - started)
        try:
            connection = await self._load(user_id)  # re-read: someone may have refreshed
            if self._fresh(connection, margin):
                return self._open(connection)
            creds = self._open(connection)
            if not creds.refresh_token:
                await self.mark_needs_reconnect(user_id)
                raise ReconnectRequired()
            await self._refresh(user_id, creds, path)
            await self.persist(user_id, creds, connection)
            return creds
        finally:
            await self._store.release_lease(lease, self._holder)

    async def _refresh(self, user_id: str, creds: Credentials, path: str = "call") -> None:
        def refresh() -> None:
            creds.refresh(google_auth_httplib2.Request(self._threads.http()))

        outcome = "ok"
        try:
            await self._threads.run(refresh)
        except RefreshError as exc:
            if is_invalid_grant(exc):
                outcome = "invalid_grant"
                await self.mark_needs_reconnect(user_id)
                raise ReconnectRequired() from None
            outcome = "failed"
            log.warning("token refresh failed", extra={"user_id": user_id})
            raise CalendarUnavailable() from None
        except (TransportError, OSError):
            outcome = "unreachable"
            log.warning("token endpoint unreachable", extra={"user_id": user_id})
            raise CalendarUnavailable() from None
        finally:
            metrics.REFRESHES.labels(path=path, outcome=outcome).inc()
            log.info("token refresh", extra={"user_id": user_id, "path": path, "outcome": outcome})

    async def persist(
        self, user_id: str, creds: Credentials, previous: GoogleConnection | None = None
    ) -> None:
        """Store credentials that google-auth refreshed (possibly with a new refresh token)."""
        previous = previous or await self._store.get_connection(user_id)
        if previous is None:  # disconnected meanwhile: do not resurrect the grant
            return
        expiry = creds.expiry.replace(tzinfo=UTC) if creds.expiry else None
        grant = Grant(
            access_token=creds.token,
            refresh_token=creds.refresh_token,
            expiry=expiry,
            scopes=tuple(creds.granted_scopes or previous.scopes),
        )
        sealed = seal_grant(
            self._vault, user_id, grant, email=previous.email, subject=previous.subject
        )
        await self._store.save_connection(replace(sealed, status=previous.status))

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
            async with hold_lease(
                self._store, f"refresh:{user_id}", ttl_seconds=_LEASE_TTL_SECONDS, wait_seconds=30
            ):
                current = await self._store.get_connection(user_id)
                if current is None:
                    continue
                try:
                    creds = self._open(current)
                except ReconnectRequired:
                    unreadable.append(user_id)
                    continue
                grant = Grant(creds.token, creds.refresh_token, current.expiry, current.scopes)
                sealed = seal_grant(
                    self._vault, user_id, grant, email=current.email, subject=current.subject
                )
                await self._store.save_connection(
                    replace(sealed, status=current.status, updated_at=current.updated_at)
                )
                rotated += 1
        return rotated, unreadable

    async def mark_needs_reconnect(self, user_id: str) -> None:
        connection = await self._store.get_connection(user_id)
        if connection is None or connection.status == NEEDS_RECONNECT:
            return
        log.warning(
            "google grant revoked or expired; user must reconnect", extra={"user_id": user_id}
        )
        await self._store.set_connection_status(user_id, NEEDS_RECONNECT)
        if self._notifier is not None:
            self._notifier.notify("needs_reconnect", user_id, email=connection.email)
