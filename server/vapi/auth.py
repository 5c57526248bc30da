"""Authenticate Vapi webhooks with any of Vapi's webhook credential plans.

Framework-free so it can be tested with plain dicts. Failure reasons are fixed phrases — they
end up in logs and responses and must never echo what the caller sent. Every comparison of a
secret or a signature is constant-time.

Vapi's credential plans (`CreateWebhookCredentialDTO.authenticationPlan`, docs/VAPI.md):
- bearer: the token in `headerName` (default `Authorization`), after `Bearer ` unless
  `bearerPrefixEnabled` is false. Vapi's legacy server secret is this plan with header
  `X-Vapi-Secret` and no prefix, so that header is always accepted too;
- HMAC: `signatureHeader` = the HMAC (`algorithm`, `signatureEncoding`, key from `secretKey`,
  base64-decoded when `secretIsBase64`) of `payloadFormat` filled in, after `signaturePrefix`.
  The timestamp unit is undocumented, so seconds and milliseconds are both accepted and told
  apart by magnitude;
- OAuth2: Vapi fetches a token from our `POST /oauth/token` with client credentials and sends
  it as `Authorization: Bearer <token>` (see `server.vapi.oauth2`).
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from vapi_calendar.support.bearer import bearer_token
from vapi_calendar.support.signing import (
    Algorithm,
    Encoding,
    decode_signature,
    digest,
    encode_signature,
    placeholders,
    same,
    signed_payload,
)

__all__ = [
    "LEGACY_SECRET_HEADER",
    "BearerPlan",
    "HmacPlan",
    "TokenCheck",
    "WebhookAuthError",
    "WebhookAuthenticator",
]

LEGACY_SECRET_HEADER = "x-vapi-secret"  # noqa: S105 - a header name
# Epoch seconds stay below this until the year 5138; epoch milliseconds passed it in 1973.
_MILLISECONDS_THRESHOLD = 100_000_000_000
_TIMESTAMP = re.compile(r"\d{1,20}(\.\d{1,9})?")


class WebhookAuthError(Exception):
    """Authentication failed; `str()` is a short reason that is safe to log and return."""


@dataclass(frozen=True, slots=True)
class BearerPlan:
    """Vapi's `BearerAuthenticationPlan`, with Vapi's defaults."""

    token: str
    header_name: str = "Authorization"
    bearer_prefix_enabled: bool = True


@dataclass(frozen=True, slots=True)
class HmacPlan:
    """Vapi's `HMACAuthenticationPlan`, with Vapi's documented defaults (its `algorithm` has
    none; sha256 is what Vapi's dashboard offers first and what this server always did)."""

    secret_key: str
    algorithm: Algorithm = "sha256"
    signature_header: str = "x-signature"
    timestamp_header: str = "x-timestamp"
    signature_prefix: str = ""
    include_timestamp: bool = True
    payload_format: str | None = None  # None: "{timestamp}.{body}", or "{body}" without one
    message_id_header: str | None = None
    signature_encoding: Encoding = "hex"
    secret_is_base64: bool = False

    @property
    def format(self) -> str:
        if self.payload_format is not None:
            return self.payload_format
        # Vapi: `includeTimestamp` is "whether to include a timestamp in the signature
        # payload"; without one the documented default format has nothing to put first.
        return "{timestamp}.{body}" if self.include_timestamp else "{body}"

    @property
    def key(self) -> bytes:
        if self.secret_is_base64:
            return base64.b64decode(self.secret_key, validate=True)
        return self.secret_key.encode()

    def headers(
        self,
        body: bytes,
        *,
        timestamp: str,
        method: str = "POST",
        url: str = "",
        message_id: str = "",
    ) -> dict[str, str]:
        """The headers Vapi sends with `body` under this plan (`vapi-calendar replay`)."""
        payload = signed_payload(
            self.format,
            {
                "body": body,
                "timestamp": timestamp.encode(),
                "method": method.encode(),
                "url": url.encode(),
                "svix-id": message_id.encode(),
            },
        )
        signature = encode_signature(
            digest(self.key, payload, self.algorithm), self.signature_encoding
        )
        headers = {self.signature_header: self.signature_prefix + signature}
        if self.include_timestamp:
            headers[self.timestamp_header] = timestamp
        if self.message_id_header and message_id:
            headers[self.message_id_header] = message_id
        return headers

    def problems(self) -> list[str]:
        """What makes this plan unusable, as sentences naming Vapi's fields (empty: fine)."""
        found = []
        used = placeholders(self.format)
        if "timestamp" in used and not self.include_timestamp:
            found.append("payloadFormat uses {timestamp} but includeTimestamp is false")
        if "svix-id" in used and not self.message_id_header:
            found.append("payloadFormat uses {svix-id} but no messageIdHeader is set")
        if self.secret_is_base64:
            try:
                self.key  # noqa: B018 - decoding is the check
            except ValueError:
                found.append("secretIsBase64 is true but secretKey is not base64")
        if not self.secret_key:
            found.append("secretKey is empty")
        return found


class TokenCheck(Protocol):
    """Checks an OAuth2 access token this server issued (`server.vapi.oauth2.WebhookTokens`)."""

    def check(self, token: str) -> str | None:
        """None when the token is good, otherwise a fixed reason."""


class WebhookAuthenticator:
    def __init__(
        self,
        *,
        bearer: BearerPlan | None = None,
        hmac: HmacPlan | None = None,
        tokens: TokenCheck | None = None,
        tolerance_seconds: float = 300,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if tolerance_seconds < 0:
            raise ValueError("tolerance_seconds must not be negative")
        # An empty secret would let an empty header through, so it counts as "not configured".
        self._bearer = bearer if bearer is not None and bearer.token else None
        self._token = self._bearer.token.encode() if self._bearer else b""
        if hmac is not None and (problems := hmac.problems()):
            raise ValueError(f"HMAC plan: {problems[0]}")
        self._hmac = hmac
        self._hmac_key = hmac.key if hmac is not None else b""
        self._signs_url = hmac is not None and "url" in placeholders(hmac.format)
        self._tokens = tokens
        self._tolerance = tolerance_seconds
        self._clock = clock

    @property
    def configured(self) -> bool:
        return self._bearer is not None or self._hmac is not None or self._tokens is not None

    @property
    def signs_url(self) -> bool:
        """Whether a signature covers the URL posted to (an HMAC payload format with {url})."""
        return self._signs_url

    def verify(
        self, headers: Mapping[str, str], body: bytes, *, method: str = "POST", url: str = ""
    ) -> str:
        """Return the plan that passed ("secret", "oauth2" or "hmac"); raise `WebhookAuthError`
        if none did. `method` and `url` are what an HMAC payload format's {method} and {url}
        stand for (the URL Vapi posted to)."""
        if not self.configured:
            raise WebhookAuthError("webhook authentication is not configured")
        lowered = {key.lower(): value for key, value in headers.items()}
        failure = "missing credentials"

        if self._bearer is not None:
            presented = _presented_secrets(self._bearer, lowered)
            if any(same(candidate, self._token) for candidate in presented):
                return "secret"
            if presented:
                failure = "invalid secret"

        if self._tokens is not None:
            token = bearer_token(lowered.get("authorization"))
            if token is not None:
                problem = self._tokens.check(token)
                if problem is None:
                    return "oauth2"
                if failure == "missing credentials" or self._bearer is None:
                    failure = problem

        if self._hmac is not None:
            plan = self._hmac
            signature = lowered.get(plan.signature_header.lower())
            timestamp = lowered.get(plan.timestamp_header.lower())
            if signature is not None or (plan.include_timestamp and timestamp is not None):
                # A signature attempt is the more specific story, so its reason wins.
                problem = self._hmac_problem(plan, lowered, body, method, url)
                if problem is None:
                    return "hmac"
                failure = problem

        raise WebhookAuthError(failure)

    def _hmac_problem(
        self, plan: HmacPlan, headers: Mapping[str, str], body: bytes, method: str, url: str
    ) -> str | None:
        """None when the signature is good (and fresh), otherwise the reason it is not."""
        signature = headers.get(plan.signature_header.lower())
        if not signature:
            return "missing credentials"
        timestamp = ""
        if plan.include_timestamp:
            timestamp = headers.get(plan.timestamp_header.lower(), "")
            if not timestamp:
                return "missing credentials"
            if not _TIMESTAMP.fullmatch(timestamp):
                return "invalid timestamp"
        message_id = headers.get((plan.message_id_header or "").lower(), "")
        if "svix-id" in placeholders(plan.format) and not message_id:
            return "missing credentials"
        size = hashlib.new(plan.algorithm).digest_size
        presented = _without_prefix(plan, signature.strip())
        provided = decode_signature(presented, plan.signature_encoding, size)
        if provided is None:
            return "invalid signature"
        payload = signed_payload(
            plan.format,
            {
                "body": body,
                "timestamp": timestamp.encode(),
                "method": method.encode(),
                "url": url.encode(),
                "svix-id": message_id.encode("utf-8", errors="replace"),
            },
        )
        if not same(digest(self._hmac_key, payload, plan.algorithm), provided):
            return "invalid signature"
        if plan.include_timestamp:
            sent_at = float(timestamp)
            if sent_at >= _MILLISECONDS_THRESHOLD:
                sent_at /= 1000
            if abs(self._clock() - sent_at) > self._tolerance:
                return "timestamp outside the allowed window"
        return None


def _without_prefix(plan: HmacPlan, signature: str) -> str:
    """The signature without the plan's `signaturePrefix`; a GitHub-style `<algorithm>=` is
    tolerated too (this server accepted `sha256=` before the prefix was configurable)."""
    for prefix in (plan.signature_prefix, f"{plan.algorithm}="):
        if prefix and signature.lower().startswith(prefix.lower()):
            return signature[len(prefix) :]
    return signature


def _presented_secrets(plan: BearerPlan, headers: Mapping[str, str]) -> list[bytes]:
    candidates = []
    value = headers.get(plan.header_name.lower())
    if value is not None:
        candidates.append(bearer_token(value) if plan.bearer_prefix_enabled else value.strip())
    if legacy := headers.get(LEGACY_SECRET_HEADER):
        candidates.append(legacy.strip())
    # errors="replace": a header can never make encoding raise; a mangled value just won't match.
    return [candidate.encode("utf-8", errors="replace") for candidate in candidates if candidate]
