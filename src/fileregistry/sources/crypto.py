"""Encryption at rest of stored source secrets: ``cryptography``'s Fernet (AES-128-CBC + HMAC-SHA256).

The key comes from ``FILEREGISTRY_SECRET_KEY`` (several, comma-separated, rotate through
:class:`MultiFernet`: the first encrypts, every one decrypts). Without it, a key is generated into
``<data_dir>/secret.key`` on first start, with a warning. A check token in ``app_meta`` is written
with the first key ever used, so a wrong key is a clear error at start instead of garbage later.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import orjson
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from fileregistry.config import Settings
from fileregistry.db import unit_of_work
from fileregistry.errors import AppError
from fileregistry.sources.models import AppMeta

log = logging.getLogger("fileregistry.sources")

KEY_FILE = "secret.key"
_CHECK_KEY = "secret_key_check"
_CHECK_PLAINTEXT = b"fileregistry secret key check"


class SecretKeyError(AppError):
    """The configured secret key is malformed or is not the one the stored secrets were written with."""

    status_code = 500
    code = "secret_key_error"


class SecretCipher:
    def __init__(self, keys: list[bytes]) -> None:
        self._fernet = MultiFernet([Fernet(k) for k in keys])

    def encrypt(self, data: dict[str, Any]) -> str:
        return self._fernet.encrypt(orjson.dumps(data)).decode("ascii")

    def decrypt(self, token: str) -> dict[str, Any]:
        try:
            return orjson.loads(self._fernet.decrypt(token.encode("ascii")))
        except InvalidToken:
            raise SecretKeyError(
                "stored source secrets cannot be decrypted with FILEREGISTRY_SECRET_KEY (wrong key?)"
            ) from None


def _parse_keys(raw: str, origin: str) -> list[bytes]:
    keys = [k.strip().encode("ascii", "replace") for k in raw.split(",") if k.strip()]
    if not keys:
        raise SecretKeyError(f"{origin} is empty")
    for i, k in enumerate(keys, 1):
        try:
            Fernet(k)
        except (ValueError, TypeError):
            # Never echo the value: it is (nearly) a key.
            raise SecretKeyError(
                f"{origin}: key {i} is not a Fernet key (32 url-safe base64-encoded bytes); make one with "
                "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
            ) from None
    return keys


def load_cipher(settings: Settings) -> SecretCipher:
    """The cipher of ``FILEREGISTRY_SECRET_KEY``, or of ``<data_dir>/secret.key`` (created if missing)."""
    if settings.secret_key is not None:
        return SecretCipher(_parse_keys(settings.secret_key.get_secret_value(), "FILEREGISTRY_SECRET_KEY"))
    path = settings.data_dir / KEY_FILE
    if not path.exists():
        _create_key_file(path)
    return SecretCipher(_parse_keys(path.read_text(), str(path)))


def _create_key_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return
    with os.fdopen(fd, "wb") as f:
        f.write(Fernet.generate_key() + b"\n")
    log.warning(
        "FILEREGISTRY_SECRET_KEY is not set: generated a key into %s to encrypt stored source secrets. "
        "Back it up (without it the stored passwords and keys are lost) or set FILEREGISTRY_SECRET_KEY.",
        path,
    )


async def verify_cipher(sessions, cipher: SecretCipher) -> None:
    """Raise :class:`SecretKeyError` unless ``cipher`` opens what earlier starts stored."""
    for _ in range(2):
        async with unit_of_work(sessions) as s:
            stored = await s.scalar(select(AppMeta.value).where(AppMeta.key == _CHECK_KEY))
        if stored is not None:
            try:
                ok = cipher._fernet.decrypt(stored.encode("ascii")) == _CHECK_PLAINTEXT
            except InvalidToken:
                ok = False
            if not ok:
                raise SecretKeyError(
                    "FILEREGISTRY_SECRET_KEY is not the key the stored source secrets were encrypted with: "
                    "set the original key (or list it after a new one, comma-separated, to rotate)"
                )
            return
        try:
            async with unit_of_work(sessions) as s:
                s.add(AppMeta(key=_CHECK_KEY, value=cipher._fernet.encrypt(_CHECK_PLAINTEXT).decode("ascii")))
        except IntegrityError:  # another process wrote it first: check against theirs
            continue
        return
