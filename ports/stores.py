"""The persistence contract every backend implements, as narrow interfaces.

Each consumer names the one interface it needs (`LeaseStore`, `RecordStore`, …); a backend
implements all of them as one `Store`. Plain dataclasses in, plain dataclasses out, aware UTC
datetimes everywhere. Anything secret (tokens, PKCE verifiers) reaches the store already
encrypted by `vapi_calendar.oauth.vault.TokenVault`, so no backend can leak plaintext
credentials. Every guarantee the application relies on for correctness — single-use OAuth
state, leases, first-writer-wins records — is an atomic operation of the store itself, never a
read-then-write in application code.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

CONNECTED = "connected"
NEEDS_RECONNECT = "needs_reconnect"

# Calendar providers a connection can be with (`Connection.provider`, `OAuthState.provider`).
GOOGLE = "google"
MICROSOFT = "microsoft"


class StoreError(Exception):
    """Base class for store failures the caller can act on."""


class AlreadyExists(StoreError):
    """A create hit an existing key."""


class NotFound(StoreError):
    """An update or link referenced a record that does not exist."""


@dataclass(frozen=True, slots=True)
class User:
    id: str
    timezone: str
    created_at: datetime
    # Booking rules (working hours, buffers, …) as a JSON-compatible mapping; `tools.rules`.
    rules: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CalendarWarning:
    """A calendar of the user's that could not be read, since when, and the provider's reason."""

    calendar_id: str
    reason: str
    since: datetime  # aware UTC


@dataclass(frozen=True, slots=True)
class Connection:
    """A user's calendar grant. Token fields hold ciphertext produced by `TokenVault`."""

    user_id: str
    access_token: str  # ciphertext
    refresh_token: str | None  # ciphertext
    expiry: datetime | None  # aware UTC; None = unknown
    scopes: tuple[str, ...]
    email: str | None
    subject: str | None  # the provider's stable account id (Google `sub`, Microsoft tid/oid)
    status: str = CONNECTED  # CONNECTED | NEEDS_RECONNECT
    updated_at: datetime | None = None
    # Calendars of this connection that currently cannot be read, by calendar id order.
    warnings: tuple[CalendarWarning, ...] = ()
    # Whose calendar it is: GOOGLE | MICROSOFT (one provider per user).
    provider: str = GOOGLE


@dataclass(frozen=True, slots=True)
class ConnectedUser:
    """A user and its calendar connection as stored (None: not connected), read together:
    what every tool call needs before it can start."""

    user: User
    connection: Connection | None


@dataclass(frozen=True, slots=True)
class OAuthState:
    """A pending consent. `state_hash` is a digest of the state, never the state itself."""

    state_hash: str
    user_id: str
    code_verifier: str  # ciphertext
    expires_at: datetime  # aware UTC
    link: str = ""  # ciphertext: the connect link the consent was started from
    browser: str = ""  # digest of the key in the cookie of the browser that started it
    provider: str = GOOGLE  # whose consent page the browser was sent to


class UserStore(abc.ABC):
    @abc.abstractmethod
    async def create_user(self, user: User) -> None:
        """Insert; raise `AlreadyExists` when the id is taken."""

    @abc.abstractmethod
    async def get_user(self, user_id: str) -> User | None: ...

    @abc.abstractmethod
    async def update_user(
        self,
        user_id: str,
        *,
        timezone: str | None = None,
        rules: dict[str, Any] | None = None,
    ) -> User:
        """Change the given fields; raise `NotFound` when there is no such user."""

    @abc.abstractmethod
    async def delete_user(self, user_id: str) -> bool:
        """Delete the user and everything it owns: links, API keys, connection, pending
        consents, and the leases and records stored with `owner=user_id`; where the backend
        allows, leave none of their text readable in its files. True when the user existed."""


# Whom a platform's agent (a Vapi assistant, a Retell or ElevenLabs agent) or one of its phone
# numbers acts for. Ids are the platform's own: Vapi names its phone numbers by an id, Retell
# and ElevenLabs by the number itself (E.164).
LinkKind = Literal["agent", "phoneNumber"]


class LinkStore(abc.ABC):
    """Links to users: (platform, agent id or phone number) → the user it acts for."""

    @abc.abstractmethod
    async def put_link(self, platform: str, kind: LinkKind, linked_id: str, user_id: str) -> None:
        """Create or replace the link; raise `NotFound` when the user does not exist."""

    @abc.abstractmethod
    async def delete_link(self, platform: str, kind: LinkKind, linked_id: str) -> bool: ...

    @abc.abstractmethod
    async def linked_user(self, platform: str, kind: LinkKind, linked_id: str) -> str | None: ...

    # Vapi's links, under the names the admin API and the CLI have always used.
    async def link_assistant(self, assistant_id: str, user_id: str) -> None:
        await self.put_link("vapi", "agent", assistant_id, user_id)

    async def unlink_assistant(self, assistant_id: str) -> bool:
        return await self.delete_link("vapi", "agent", assistant_id)

    async def user_for_assistant(self, assistant_id: str) -> str | None:
        return await self.linked_user("vapi", "agent", assistant_id)

    async def link_phone_number(self, phone_number_id: str, user_id: str) -> None:
        await self.put_link("vapi", "phoneNumber", phone_number_id, user_id)

    async def unlink_phone_number(self, phone_number_id: str) -> bool:
        return await self.delete_link("vapi", "phoneNumber", phone_number_id)

    async def user_for_phone_number(self, phone_number_id: str) -> str | None:
        return await self.linked_user("vapi", "phoneNumber", phone_number_id)


class CallerStore(abc.ABC):
    """Whose calendar a tool call is for, with its connection: the reads at the start of every
    tool call. A backend that can answer each in one round trip should (SQLite: one join, one
    hop to its thread); `Store` gives the plain sequence of reads as the default."""

    @abc.abstractmethod
    async def user_with_connection(self, user_id: str) -> ConnectedUser | None: ...

    @abc.abstractmethod
    async def linked_user_with_connection(
        self, platform: str, kind: LinkKind, linked_id: str
    ) -> ConnectedUser | None:
        """The linked user and its connection; None when there is no link or the linked user
        does not exist."""


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A user's API key (MCP): only a digest of the key is stored, never the key."""

    id: str  # public: names the key in lists and revocations
    user_id: str
    digest: str  # SHA-256 hex of the whole key
    name: str  # the integrator's label, may be empty
    created_at: datetime  # aware UTC


class ApiKeyStore(abc.ABC):
    """Per-user API keys, looked up by digest."""

    @abc.abstractmethod
    async def create_api_key(self, key: ApiKey) -> None:
        """Insert; raise `NotFound` when the user does not exist, `AlreadyExists` when the id
        or the digest is taken."""

    @abc.abstractmethod
    async def list_api_keys(self, user_id: str) -> list[ApiKey]:
        """The user's keys, oldest first."""

    @abc.abstractmethod
    async def delete_api_key(self, user_id: str, key_id: str) -> bool:
        """Revoke one of the user's keys; False when the user has no such key."""

    @abc.abstractmethod
    async def api_key_by_digest(self, digest: str) -> ApiKey | None: ...


class ConnectionStore(abc.ABC):
    """Each user's calendar grant (encrypted tokens)."""

    @abc.abstractmethod
    async def save_connection(self, connection: Connection) -> None:
        """Create or replace the user's connection in one atomic write.

        Raises `NotFound` for an unknown user. `updated_at` is the store's: a given value is
        kept, None becomes now; `set_connection_status` bumps it too.
        """

    @abc.abstractmethod
    async def get_connection(self, user_id: str) -> Connection | None: ...

    @abc.abstractmethod
    async def set_connection_status(self, user_id: str, status: str) -> bool: ...

    @abc.abstractmethod
    async def set_calendar_warnings(
        self, user_id: str, warnings: tuple[CalendarWarning, ...]
    ) -> bool:
        """Replace the connection's warnings (nothing else changes, `updated_at` neither);
        False when the user has no connection. `save_connection` writes them too."""

    @abc.abstractmethod
    async def delete_connection(self, user_id: str) -> bool: ...

    @abc.abstractmethod
    async def list_connections(self) -> list[Connection]:
        """Every stored connection (key rotation)."""


class OAuthStateStore(abc.ABC):
    """Pending consents, each usable once."""

    @abc.abstractmethod
    async def put_oauth_state(self, state: OAuthState) -> None: ...

    @abc.abstractmethod
    async def consume_oauth_state(self, state_hash: str, now: datetime) -> OAuthState | None:
        """Atomically remove and return the state; None if absent, used or expired."""


class LeaseStore(abc.ABC):
    """Named leases: locks across processes that free themselves when their holder dies.

    A lease matters only while its holder lives, so a backend need not wait for the disk to
    take or release one (a power cut ends every holder on the machine too).
    """

    @abc.abstractmethod
    async def acquire_lease(
        self, name: str, holder: str, ttl_seconds: float, *, owner: str | None = None
    ) -> bool:
        """Take the lease if free, expired, or already held by `holder` (then extend it).

        `owner` is the user the lease belongs to, if any: deleting the user deletes it.
        """

    @abc.abstractmethod
    async def release_lease(self, name: str, holder: str) -> None:
        """Release only if `holder` still holds it."""


class RecordStore(abc.ABC):
    """Expiring key → value records, first writer wins (answers, booking markers)."""

    @abc.abstractmethod
    async def get_record(self, key: str) -> str | None:
        """The stored value for `key` unless it has expired."""

    @abc.abstractmethod
    async def put_record(
        self,
        key: str,
        value: str,
        ttl_seconds: float,
        *,
        owner: str | None = None,
        durable: bool = True,
    ) -> bool:
        """Store if absent (or expired). False when a live record already exists: first wins.

        `owner` is the user the record belongs to, if any: deleting the user deletes it.
        `durable=False` is for records that only matter while the processes using them live
        (a tool call's answer, a booking's first-attempt marker): a backend may then skip
        waiting for the disk, so a power cut or an OS crash (never a crash of the process) may
        lose the last ones. A single-use marker must stay durable.
        """

    async def put_record_and_read(
        self,
        key: str,
        value: str,
        ttl_seconds: float,
        *,
        read: str,
        owner: str | None = None,
        durable: bool = True,
    ) -> tuple[bool, str | None]:
        """`put_record(key, …)`, then `get_record(read)`: one round trip where the backend can.

        Here two; a backend overrides it when one statement can do both.
        """
        stored = await self.put_record(key, value, ttl_seconds, owner=owner, durable=durable)
        return stored, await self.get_record(read)


class Store(
    UserStore,
    LinkStore,
    CallerStore,
    ApiKeyStore,
    ConnectionStore,
    OAuthStateStore,
    LeaseStore,
    RecordStore,
    abc.ABC,
):
    """A whole backend. Implementations must never block the event loop."""

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect and create or migrate the schema. Idempotent."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise if the backend is unreachable."""

    @abc.abstractmethod
    async def purge_expired(self) -> int:
        """Delete expired records, leases and pending consents now; how many were deleted."""

    async def user_with_connection(self, user_id: str) -> ConnectedUser | None:
        user = await self.get_user(user_id)
        if user is None:
            return None
        return ConnectedUser(user, await self.get_connection(user_id))

    async def linked_user_with_connection(
        self, platform: str, kind: LinkKind, linked_id: str
    ) -> ConnectedUser | None:
        user_id = await self.linked_user(platform, kind, linked_id)
        return None if user_id is None else await self.user_with_connection(user_id)
