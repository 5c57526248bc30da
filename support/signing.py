"""HMAC signatures and constant-time comparison.

Used for both directions: verifying webhooks that reach us (every option of Vapi's HMAC
credential plan: algorithm, hex or base64, a payload format with placeholders) and signing the
ones we send (the connection notifications, `vapi-calendar replay`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Literal

Algorithm = Literal["sha256", "sha512", "sha1"]
Encoding = Literal["hex", "base64"]

# Vapi's HMAC plan (`HMACAuthenticationPlan.payloadFormat`): "Use {body} for request body,
# {timestamp} for timestamp, {method} for HTTP method, {url} for URL, {svix-id} for unique
# message ID."
PAYLOAD_PLACEHOLDERS = frozenset({"body", "timestamp", "method", "url", "svix-id"})
_PLACEHOLDER = re.compile(r"\{([A-Za-z][A-Za-z-]*)\}")
_HEX = re.compile(r"[0-9a-fA-F]+")


def timestamped_signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """Hex HMAC-SHA256 of `"{timestamp}.{raw body}"`: the timestamp exactly as sent, the body's
    bytes as received, never a re-encoding."""
    return hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def placeholders(payload_format: str) -> set[str]:
    """The `{name}` placeholders a payload format uses."""
    return set(_PLACEHOLDER.findall(payload_format))


def signed_payload(payload_format: str, values: Mapping[str, bytes]) -> bytes:
    """The bytes a payload format stands for: literal text as UTF-8, each placeholder replaced
    by its value's bytes exactly (the body is never decoded and re-encoded)."""
    parts: list[bytes] = []
    position = 0
    for match in _PLACEHOLDER.finditer(payload_format):
        name = match.group(1)
        if name not in values:
            raise ValueError(f"no value for the payload placeholder {{{name}}}")
        parts += [payload_format[position : match.start()].encode(), values[name]]
        position = match.end()
    parts.append(payload_format[position:].encode())
    return b"".join(parts)


def digest(secret: bytes, payload: bytes, algorithm: Algorithm = "sha256") -> bytes:
    return hmac.new(secret, payload, algorithm).digest()


def encode_signature(raw: bytes, encoding: Encoding = "hex") -> str:
    return raw.hex() if encoding == "hex" else base64.b64encode(raw).decode()


def decode_signature(text: str, encoding: Encoding, size: int) -> bytes | None:
    """The raw digest a presented signature stands for; None when it cannot be one (wrong
    alphabet or length). Hex in either case; base64 in the standard or URL-safe alphabet,
    padding optional."""
    if encoding == "hex":
        if len(text) != 2 * size or not _HEX.fullmatch(text):
            return None
        return bytes.fromhex(text)
    try:
        standard = text.replace("-", "+").replace("_", "/")
        raw = base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == size else None


def same(a: str | bytes, b: str | bytes) -> bool:
    """Constant-time equality of two secrets (text is compared as UTF-8)."""
    left = a.encode("utf-8", errors="replace") if isinstance(a, str) else a
    right = b.encode("utf-8", errors="replace") if isinstance(b, str) else b
    return hmac.compare_digest(left, right)


# Retell's `X-Retell-Signature` (retell-sdk `retell.lib.webhook_auth`): `v=<unix ms>,d=<hex
# HMAC-SHA256>` of the raw body followed by the timestamp's decimal digits, keyed with the
# Retell API key; refused when the timestamp is more than five minutes from now, either way.
RETELL_TOLERANCE_MS = 5 * 60 * 1000
_RETELL_SIGNATURE = re.compile(r"v=(\d+),d=([0-9a-f]{64})")


def retell_signature(body: bytes, api_key: str, timestamp_ms: int) -> str:
    """The header value Retell sends for `body` at `timestamp_ms`."""
    mac = hmac.new(api_key.encode(), body + str(timestamp_ms).encode(), hashlib.sha256)
    return f"v={timestamp_ms},d={mac.hexdigest()}"


def retell_signature_valid(body: bytes, api_key: str, header: str, now_ms: int) -> bool:
    """Whether `header` signs `body` (raw bytes, as received) with `api_key`, made within
    five minutes of `now_ms`; the digest is compared in constant time."""
    match = _RETELL_SIGNATURE.fullmatch(header.strip())
    if match is None:
        return False
    timestamp_ms = int(match.group(1))
    if abs(now_ms - timestamp_ms) > RETELL_TOLERANCE_MS:
        return False
    expected = retell_signature(body, api_key, timestamp_ms)
    return same(expected, f"v={timestamp_ms},d={match.group(2)}")
