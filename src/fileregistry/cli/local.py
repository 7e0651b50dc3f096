"""The CLI's direct access to the local data dir and database (no server needed)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.exc import DBAPIError

from fileregistry.config import Settings
from fileregistry.errors import AppError

T = TypeVar("T")


@dataclass
class Local:
    settings: Settings
    sessions: object  # async_sessionmaker
    cipher: object  # SecretCipher


@contextlib.asynccontextmanager
async def local_context(settings: Settings | None = None) -> AsyncIterator[Local]:
    """Settings, a session factory on the configured database (migrated when auto_migrate is on),
    and the secret cipher, checked against the stored secrets like the server does at start."""
    from fileregistry.db import create_nullpool_engine, session_factory
    from fileregistry.migrate import upgrade
    from fileregistry.sources.crypto import load_cipher, verify_cipher

    settings = settings or Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_nullpool_engine(settings.resolved_database_url)
    try:
        if settings.auto_migrate:
            await upgrade(engine)
        sessions = session_factory(engine)
        cipher = load_cipher(settings)
        await verify_cipher(sessions, cipher)
        yield Local(settings, sessions, cipher)
    finally:
        await engine.dispose()


def run_local(fn: Callable[[Local], Awaitable[T]], settings: Settings | None = None) -> T:
    """Run ``fn(local)`` to completion; database driver errors become one clear AppError."""

    async def go() -> T:
        async with local_context(settings) as local:
            return await fn(local)

    try:
        return asyncio.run(go())
    except DBAPIError as exc:
        # The driver's message can quote SQL parameters: show only its class.
        raise AppError(f"database error ({type(exc.orig).__name__}); is the schema current? "
                       "run: fileregistry db upgrade") from None
