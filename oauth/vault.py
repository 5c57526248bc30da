"""TokenVault: authenticated encryption of tokens at rest (AES-256-GCM).

Ciphertext format: ``v1.<key id>.<base64url(nonce | ciphertext+tag)>``. The key id (a short
digest of the key) lets any configured key decrypt what it wrote while only the first key
encrypts, so keys rotate without downtime. Each value is bound to its purpose and owner through
the associated data (e.g. ``"access_token:ana"``), so a ciphertext copied onto another user's
row fails to decrypt instead of granting access to someone else's calendar.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_VERSION = "v1"
_NONCE_BYTES = 12


class VaultError(Exception):
    """A value cannot be decrypted with any configured key (or a key is malformed)."""


def _decode_key(text: str) -> bytes:
    text = text.strip()
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError as exc:
        raise VaultError("ENCRYPTION_KEY entries must be base64 (32 bytes each)") from exc
    if len(raw) != 32:
        raise VaultError("ENCRYPTION_KEY entries must decode to exactly 32 bytes")
    return raw


def generate_key() -> str:
    """A fresh key in the form ENCRYPTION_KEY expects."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def _key_id(key: bytes) -> str:
    return hashlib.sha256(b"vapi-calendar key id" + key).hexdigest()[:8]


class TokenVault:
    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise VaultError("at least one encryption key is required")
        decoded = [_decode_key(k) for k in keys]
        self._keys = decoded
        self._primary_id = _key_id(decoded[0])
        self._ciphers = {_key_id(k): AESGCM(k) for k in decoded}

    @classmethod
    def from_setting(cls, value: str) -> TokenVault:
        """Comma-separated keys; the first encrypts, all decrypt."""
        return cls([k for k in value.split(",") if k.strip()])

    def encrypt(self, plaintext: str, *, context: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._ciphers[self._primary_id].encrypt(
            nonce, plaintext.encode(), context.encode()
        )
        blob = base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")
        return f"{_VERSION}.{self._primary_id}.{blob}"

    def decrypt(self, ciphertext: str, *, context: str) -> str:
        try:
            version, key_id, blob = ciphertext.split(".", 2)
        except ValueError:
            raise VaultError("stored value is not in vault format") from None
        cipher = self._ciphers.get(key_id)
        if version != _VERSION or cipher is None:
            raise VaultError("stored value was encrypted with a key that is not configured")
        raw = base64.urlsafe_b64decode(blob + "=" * (-len(blob) % 4))
        try:
            return cipher.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], context.encode()).decode()
        except InvalidTag:
            raise VaultError("stored value failed authentication") from None

    def derived_keys(self, purpose: str) -> list[bytes]:
        """Independent sub-keys (HKDF) for other uses, e.g. signing connect links.

        Oldest first and the primary key's last, the order itsdangerous expects, so links signed
        before a rotation stay valid while the old key is still configured.
        """
        return [
            HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode()).derive(k)
            for k in reversed(self._keys)
        ]

    def needs_rotation(self, ciphertext: str) -> bool:
        return not ciphertext.startswith(f"{_VERSION}.{self._primary_id}.")


def load_or_create_key_file(path: Path, make: Callable[[], str] = generate_key) -> tuple[str, bool]:
    """Read the embedded default's key file, creating it (mode 0600) when absent with `make()`
    (an encryption key unless told otherwise: demo mode keeps its admin token the same way).

    Returns the key and whether it was created now.
    """
    if path.exists():
        return path.read_text().strip(), False
    path.parent.mkdir(parents=True, exist_ok=True)
    key = make()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: theirs is the key
        return path.read_text().strip(), False
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key, True
