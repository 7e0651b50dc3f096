"""User use cases: create, list, disable/enable, look up, bootstrap the first admin."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from fileregistry.auth import crypto
from fileregistry.auth.models import User
from fileregistry.db import utcnow
from fileregistry.errors import Conflict, InvalidInput, NotFound

USERNAME_RE = re.compile(r"^[A-Za-z0-9_.@+-]{1,150}$")
BOOTSTRAP_USERNAME = "admin"
BOOTSTRAP_TOKEN_NAME = "bootstrap"


def _check_username(username: str) -> str:
    if not USERNAME_RE.fullmatch(username):
        raise InvalidInput("username must be 1-150 characters of letters, digits and _ . @ + -")
    return username


async def create_user(
    session: AsyncSession, username: str, *, is_admin: bool = False, password: str | None = None
) -> User:
    _check_username(username)
    if password is not None and not password:
        raise InvalidInput("password must not be empty")
    if await session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"user {username!r} already exists")
    user = User(
        username=username,
        is_admin=is_admin,
        password_hash=crypto.hash_password(password) if password is not None else None,
        created_at=utcnow(),
    )
    session.add(user)
    try:
        await session.flush()
    except IntegrityError as exc:  # lost a race with a concurrent create
        raise Conflict(f"user {username!r} already exists") from exc
    return user


async def list_users(session: AsyncSession) -> list[User]:
    return list(await session.scalars(select(User).order_by(User.id)))


async def get_user(session: AsyncSession, username: str) -> User:
    user = await session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"no user {username!r}")
    return user


async def set_disabled(session: AsyncSession, username: str, disabled: bool) -> User:
    """Disable (or re-enable) a user. A disabled user's tokens stop working at once."""
    user = await get_user(session, username)
    if disabled and user.disabled_at is None:
        user.disabled_at = utcnow()
    elif not disabled:
        user.disabled_at = None
    await session.flush()
    return user


async def set_password(session: AsyncSession, username: str, password: str) -> User:
    """Set (or replace) the web UI password of ``username``; its UI sessions end at their next click."""
    if not password:
        raise InvalidInput("password must not be empty")
    user = await get_user(session, username)
    user.password_hash = crypto.hash_password(password)
    await session.flush()
    return user


async def count_users(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(User)) or 0)


async def bootstrap_admin(session: AsyncSession, *, token_days: int) -> tuple[User, str] | None:
    """On an empty user table, create ``admin`` and a refresh token for it; else do nothing.

    Returns the user and the plaintext refresh token, which the caller shows once.
    """
    from fileregistry.auth.tokens import create_refresh_token

    if await count_users(session):
        return None
    try:
        user = await create_user(session, BOOTSTRAP_USERNAME, is_admin=True)
    except Conflict:  # another process bootstrapped at the same moment
        return None
    _, token = await create_refresh_token(
        session, user, name=BOOTSTRAP_TOKEN_NAME, lifetime=timedelta(days=token_days)
    )
    return user, token
