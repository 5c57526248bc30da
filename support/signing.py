"""HMAC signatures over a timestamp and a raw body, and constant-time comparison.

Used for both directions: verifying webhooks that reach us and signing the ones we send (the
connection notifications, `vapi-calendar replay`).
"""

from __future__ import annotations

import hashlib
import hmac


def timestamped_signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """Hex HMAC-SHA256 of `"{timestamp}.{raw body}"`: the timestamp exactly as sent, the body's
    bytes as received, never a re-encoding."""
    return hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def same(a: str | bytes, b: str | bytes) -> bool:
    """Constant-time equality of two secrets (text is compared as UTF-8)."""
    left = a.encode("utf-8", errors="replace") if isinstance(a, str) else a
    right = b.encode("utf-8", errors="replace") if isinstance(b, str) else b
    return hmac.compare_digest(left, right)
