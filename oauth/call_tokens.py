"""Call tokens: proof that the integrator — not a caller or a browser — named a call's user.

Metadata on a Vapi call (assistantOverrides, an inline assistant, …) can be set by anyone who
can start a call, e.g. a visitor of a web widget using Vapi's public key. A user id there is
therefore honoured only together with `metadata.userToken`, which only the holder of
ENCRYPTION_KEY can compute:

    key   = HKDF-SHA256(ikm = the ENCRYPTION_KEY entry's 32 bytes, salt = none,
                        info = "vapi-calendar call token", length = 32)
    token = base64url-without-padding(HMAC-SHA256(key, "vapi-calendar call token v1:" + user id))

(user id as UTF-8). The first ENCRYPTION_KEY entry issues tokens and every entry is accepted,
so tokens stay valid while an old key is still configured during a rotation. A token never
expires by itself: it is a stable credential for that user id, to keep with the assistant's
configuration on the integrator's backend, never in a browser.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from vapi_calendar.oauth.vault import TokenVault

PURPOSE = "vapi-calendar call token"
_PREFIX = b"vapi-calendar call token v1:"


class CallTokens:
    def __init__(self, vault: TokenVault) -> None:
        # derived_keys lists the primary key's last.
        self._keys = list(reversed(vault.derived_keys(PURPOSE)))

    def issue(self, user_id: str) -> str:
        return _token(self._keys[0], user_id)

    def valid(self, user_id: str, token: str) -> bool:
        """Whether `token` proves `user_id` (constant time, under any configured key)."""
        presented = token.encode("utf-8", errors="replace")
        return any(
            hmac.compare_digest(_token(key, user_id).encode(), presented) for key in self._keys
        )


def _token(key: bytes, user_id: str) -> str:
    digest = hmac.new(key, _PREFIX + user_id.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")
