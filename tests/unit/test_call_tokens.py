"""Call tokens can be computed offline from the documented inputs, and only prove their user."""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from vapi_calendar.oauth.call_tokens import CallTokens
from vapi_calendar.oauth.vault import TokenVault, generate_key


def offline(encryption_key: str, user_id: str) -> str:
    """The recipe from oauth/call_tokens.py, written out as an integrator would."""
    ikm = base64.urlsafe_b64decode(encryption_key + "=" * (-len(encryption_key) % 4))
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"vapi-calendar call token"
    ).derive(ikm)
    mac = hmac.new(key, b"vapi-calendar call token v1:" + user_id.encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")


def test_a_token_is_what_the_documented_recipe_computes() -> None:
    key = generate_key()
    tokens = CallTokens(TokenVault([key]))
    assert tokens.issue("ana") == offline(key, "ana")
    assert tokens.issue("ana") == tokens.issue("ana")  # stable


def test_a_token_proves_only_its_own_user() -> None:
    tokens = CallTokens(TokenVault([generate_key()]))
    token = tokens.issue("ana")
    assert tokens.valid("ana", token)
    assert not tokens.valid("bob", token)
    assert not tokens.valid("ana", token[:-1])
    assert not tokens.valid("ana", "")


def test_tokens_survive_a_key_rotation_while_the_old_key_is_configured() -> None:
    old, new = generate_key(), generate_key()
    issued = CallTokens(TokenVault([old])).issue("ana")
    rotating = CallTokens(TokenVault([new, old]))
    assert rotating.valid("ana", issued)
    assert rotating.issue("ana") == offline(new, "ana")
    assert not CallTokens(TokenVault([new])).valid("ana", issued)
