"""Secret handling: encryption of stored secrets, and random tokens kept as hashes."""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from closedloop.errors import StoreError, ValidationError

__all__ = ["SecretBox", "hash_token", "new_token"]

logger = logging.getLogger(__name__)


class SecretBox:
    """Encrypts secrets that closedloop must read back (SigV4 keys, webhook secrets).

    The key comes from ``CLOSEDLOOP_SECRET_KEY`` or from ``<home>/secret.key``,
    which is created with mode 0600 on first use. Losing the key makes the stored
    access keys and webhook secrets unreadable, so back it up with the database.
    """

    def __init__(self, fernet: Fernet) -> None:
        self._fernet = fernet

    @classmethod
    def load(cls, configured_key: str, home: Path) -> SecretBox:
        if configured_key:
            return cls(_fernet_from(configured_key, "CLOSEDLOOP_SECRET_KEY"))
        path = home / "secret.key"
        if not path.exists():
            home.mkdir(parents=True, exist_ok=True)
            _create_key_file(path)
        return cls(_fernet_from(path.read_text().strip(), str(path)))

    def encrypt(self, secret: str) -> bytes:
        return self._fernet.encrypt(secret.encode())

    def decrypt(self, token: bytes) -> str:
        try:
            return self._fernet.decrypt(token).decode()
        except InvalidToken as exc:
            raise StoreError(
                "a stored secret could not be decrypted: is CLOSEDLOOP_SECRET_KEY the one it was made with?"
            ) from exc


def _create_key_file(path: Path) -> None:
    key = Fernet.generate_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key + b"\n")
    logger.info("created a new secret key file at %s", path)


def _fernet_from(key: str, source: str) -> Fernet:
    try:
        if len(base64.urlsafe_b64decode(key.encode())) != 32:
            raise ValueError
        return Fernet(key.encode())
    except ValueError as exc:
        raise ValidationError(
            f"the secret key from {source} must be 32 url-safe base64-encoded bytes "
            "(make one with `closedloop keys new-secret-key`)",
            "secret_key",
        ) from exc


def new_token(prefix: str) -> str:
    """A random bearer token, ``prefix`` followed by 256 bits of entropy."""
    return prefix + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """Tokens are random and long, so one SHA-256 is the right stored form."""
    return hashlib.sha256(token.encode()).hexdigest()
