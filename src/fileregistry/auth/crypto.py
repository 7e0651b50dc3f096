"""Token generation, hashing, comparison and the Alation timestamp format. Pure functions."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

_hasher = PasswordHasher()


def new_token() -> str:
    """A fresh token: 32 random bytes (256 bits), URL-safe base64, 43 characters."""
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """SHA-256 hex digest of a token; this is all the database ever holds.

    A fast unsalted hash is right here (unlike for passwords): our tokens carry 256 random bits,
    so there is no dictionary to try and brute force of the preimage is infeasible whatever the
    hash speed. A deterministic hash also lets us find the row by an indexed equality lookup.
    """
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_matches(token: str, stored_hash: str) -> bool:
    """Constant-time comparison of a presented token against a stored hash."""
    return hmac.compare_digest(hash_token(token).encode("ascii"), stored_hash.encode("ascii"))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, stored_hash: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def format_ts(value: datetime | None) -> str | None:
    """Alation's timestamp format, always UTC: ``2024-01-31T12:00:00.000000Z``."""
    if value is None:
        return None
    return value.astimezone(UTC).strftime(TIMESTAMP_FORMAT)
