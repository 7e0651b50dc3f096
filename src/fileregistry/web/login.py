"""Password sign-in for the web UI, over the auth module's users (argon2id hashes)."""

from __future__ import annotations

import asyncio
import secrets
from functools import cache

from sqlalchemy import select

from fileregistry.auth import crypto
from fileregistry.auth.models import User
from fileregistry.db import unit_of_work


@cache
def _dummy_hash() -> str:
    # Verified against when the user is unknown or has no password, so that every failure costs
    # one argon2 verification: the answer time does not tell which part was wrong.
    return crypto.hash_password(secrets.token_urlsafe(16))


async def check_password(sessions, username: str, password: str) -> User | None:
    """The active user with this username and password, or None (whichever part was wrong)."""
    user = None
    if 0 < len(username) <= 150:
        async with unit_of_work(sessions) as s:
            user = await s.scalar(select(User).where(User.username == username))
    stored = user.password_hash if user is not None and user.password_hash else None
    ok = await asyncio.to_thread(crypto.verify_password, password, stored or _dummy_hash())
    if not ok or user is None or stored is None or not user.is_active:
        return None
    return user


async def load_user(sessions, user_id: int) -> User | None:
    async with unit_of_work(sessions) as s:
        return await s.get(User, user_id)
