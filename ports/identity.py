"""Proof that the integrator named a call's user (a signed token next to the user id)."""

from __future__ import annotations

from typing import Protocol


class IdentityProofs(Protocol):
    def valid(self, user_id: str, token: str) -> bool:
        """Whether `token` proves that the integrator named `user_id` (constant time)."""
        ...
