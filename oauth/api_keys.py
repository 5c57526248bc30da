"""Per-user API keys: the credential of the MCP endpoint, where the key alone decides the user.

A key is `vcal_` + 43 URL-safe characters (32 random bytes). It is shown once, when created;
the store keeps only its SHA-256 digest, a random public id (to list and revoke it) and a label.
A 256-bit random key needs no slow hash: nobody can guess one, and a stolen database holds no
key that works. Looking a presented key up by its digest compares nothing secret-dependent in
Python (the digest is an index lookup), so there is no timing side channel on the key.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from vapi_calendar.ports.stores import ApiKey, ApiKeyStore

KEY_PREFIX = "vcal_"
# A presented key longer than this cannot be ours; do not hash arbitrary amounts of input.
_MAX_KEY_LENGTH = 128


@dataclass(frozen=True, slots=True)
class IssuedKey:
    record: ApiKey
    key: str  # the only time the key itself exists outside the integrator's hands


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", errors="replace")).hexdigest()


class ApiKeys:
    def __init__(self, store: ApiKeyStore) -> None:
        self._store = store

    async def issue(self, user_id: str, name: str = "") -> IssuedKey:
        """A new key for the user; raises `NotFound` for an unknown user."""
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        record = ApiKey(
            id="key_" + secrets.token_hex(8),
            user_id=user_id,
            digest=digest(key),
            name=name,
            created_at=datetime.now(UTC),
        )
        await self._store.create_api_key(record)
        return IssuedKey(record, key)

    async def owner(self, key: str) -> str | None:
        """The user a presented key belongs to, or None."""
        if not key.startswith(KEY_PREFIX) or len(key) > _MAX_KEY_LENGTH:
            return None
        found = await self._store.api_key_by_digest(digest(key))
        return found.user_id if found else None
