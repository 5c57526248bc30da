"""Authenticate Vapi webhooks: a shared secret, an HMAC signature, or either.

Framework-free so it can be tested with plain dicts. Failure reasons are fixed phrases — they
end up in logs and responses and must never echo what the caller sent.

Vapi's credential plans (docs/VAPI.md):
- bearer: `Authorization: Bearer <secret>`, or the legacy `X-Vapi-Secret: <secret>`;
- HMAC (defaults): `x-signature` = hex HMAC-SHA256 of `"{x-timestamp}.{raw body}"`, optionally
  prefixed `sha256=`. The timestamp unit is undocumented, so seconds and milliseconds are both
  accepted and told apart by magnitude.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping

from vapi_calendar.support.bearer import bearer_token
from vapi_calendar.support.signing import same, timestamped_signature

__all__ = ["WebhookAuthError", "WebhookAuthenticator"]

# Epoch seconds stay below this until the year 5138; epoch milliseconds passed it in 1973.
_MILLISECONDS_THRESHOLD = 100_000_000_000
_TIMESTAMP = re.compile(r"\d{1,20}(\.\d{1,9})?")
_HEX_SHA256 = re.compile(r"[0-9a-f]{64}")


class WebhookAuthError(Exception):
    """Authentication failed; `str()` is a short reason that is safe to log and return."""


class WebhookAuthenticator:
    def __init__(
        self,
        *,
        secret: str | None,
        hmac_secret: str | None,
        tolerance_seconds: float = 300,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if tolerance_seconds < 0:
            raise ValueError("tolerance_seconds must not be negative")
        # An empty secret would let an empty header through, so it counts as "not configured".
        self._secret = secret.encode() if secret else None
        self._hmac_key = hmac_secret.encode() if hmac_secret else None
        self._tolerance = tolerance_seconds
        self._clock = clock

    @property
    def configured(self) -> bool:
        return self._secret is not None or self._hmac_key is not None

    def verify(self, headers: Mapping[str, str], body: bytes) -> str:
        """Return the method that passed ("secret" or "hmac"); raise `WebhookAuthError` if none."""
        if not self.configured:
            raise WebhookAuthError("webhook authentication is not configured")
        lowered = {key.lower(): value for key, value in headers.items()}
        failure = "missing credentials"

        if self._secret is not None:
            presented = _presented_secrets(lowered)
            if any(same(candidate, self._secret) for candidate in presented):
                return "secret"
            if presented:
                failure = "invalid secret"

        if self._hmac_key is not None:
            signature = lowered.get("x-signature")
            timestamp = lowered.get("x-timestamp")
            if signature is not None or timestamp is not None:
                # A signature attempt is the more specific story, so its reason wins.
                problem = self._hmac_problem(self._hmac_key, signature, timestamp, body)
                if problem is None:
                    return "hmac"
                failure = problem

        raise WebhookAuthError(failure)

    def _hmac_problem(
        self, key: bytes, signature: str | None, timestamp: str | None, body: bytes
    ) -> str | None:
        """None when the signature is good and fresh, otherwise the reason it is not."""
        if not signature or not timestamp:
            return "missing credentials"
        if not _TIMESTAMP.fullmatch(timestamp):
            return "invalid timestamp"
        provided = signature.strip().lower().removeprefix("sha256=")
        if not _HEX_SHA256.fullmatch(provided):
            return "invalid signature"
        if not same(timestamped_signature(key, timestamp, body), provided):
            return "invalid signature"
        sent_at = float(timestamp)
        if sent_at >= _MILLISECONDS_THRESHOLD:
            sent_at /= 1000
        if abs(self._clock() - sent_at) > self._tolerance:
            return "timestamp outside the allowed window"
        return None


def _presented_secrets(headers: Mapping[str, str]) -> list[bytes]:
    candidates = []
    legacy = headers.get("x-vapi-secret")
    if legacy:
        candidates.append(legacy.strip())
    if token := bearer_token(headers.get("authorization")):
        candidates.append(token)
    # errors="replace": a header can never make encoding raise; a mangled value just won't match.
    return [candidate.encode("utf-8", errors="replace") for candidate in candidates if candidate]
