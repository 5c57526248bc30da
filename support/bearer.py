"""Reading `Authorization: Bearer <token>` headers."""

from __future__ import annotations


def bearer_token(authorization: str | None) -> str | None:
    """The token of a bearer header (scheme case-insensitive, surrounding blanks ignored)."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None
