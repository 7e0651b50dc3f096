"""Refresh and API access token use cases (Alation's token model).

Plaintext tokens exist only in the return value of the function that creates them and in the
request that presents them; the database holds SHA-256 hashes (see :mod:`.crypto`).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from fileregistry.auth import crypto
from fileregistry.auth.models import AccessToken, RefreshToken, User
from fileregistry.auth.users import get_user
from fileregistry.db import utcnow
from fileregistry.errors import Conflict, InvalidInput, NotFound, Unauthorized

ACTIVE = "ACTIVE"
EXPIRED = "EXPIRED"

INVALID_REFRESH = {"detail": "Refresh token provided is invalid.", "code": "401000"}
INVALID_ACCESS = {"detail": "API access token provided is invalid.", "code": "401000"}


def invalid_refresh_token() -> Unauthorized:
    return Unauthorized(INVALID_REFRESH["detail"], body=dict(INVALID_REFRESH))


def invalid_access_token() -> Unauthorized:
    return Unauthorized(INVALID_ACCESS["detail"], body=dict(INVALID_ACCESS))


def status_at(expires_at: datetime, now: datetime) -> str:
    return ACTIVE if expires_at > now else EXPIRED


@dataclass(frozen=True)
class IssuedAccessToken:
    row: AccessToken
    token: str  # plaintext, returned once


# --------------------------------------------------------------------------- refresh tokens


async def create_refresh_token(
    session: AsyncSession, user: User, *, name: str | None, lifetime: timedelta
) -> tuple[RefreshToken, str]:
    """A new named refresh token for ``user``; returns the row and the plaintext (show it once)."""
    name = name if name is not None else f"token-{secrets.token_hex(4)}"
    if not name or len(name) > 255:
        raise InvalidInput("token name must be 1-255 characters")
    if lifetime <= timedelta(0):
        raise InvalidInput("token lifetime must be positive")
    exists = await session.scalar(
        select(RefreshToken.id).where(RefreshToken.user_id == user.id, RefreshToken.name == name)
    )
    if exists is not None:
        raise Conflict(f"user {user.username!r} already has a token named {name!r}")
    token = crypto.new_token()
    now = utcnow()
    row = RefreshToken(
        user_id=user.id, name=name, token_hash=crypto.hash_token(token), created_at=now,
        expires_at=now + lifetime,
    )
    session.add(row)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict(f"user {user.username!r} already has a token named {name!r}") from exc
    return row, token


async def list_refresh_tokens(session: AsyncSession, username: str) -> list[RefreshToken]:
    user = await get_user(session, username)
    return list(
        await session.scalars(select(RefreshToken).where(RefreshToken.user_id == user.id).order_by(RefreshToken.id))
    )


async def revoke_refresh_token(session: AsyncSession, username: str, name: str) -> RefreshToken:
    """Revoke a user's refresh token by name, and every access token created from it."""
    user = await get_user(session, username)
    row = await session.scalar(
        select(RefreshToken).where(RefreshToken.user_id == user.id, RefreshToken.name == name)
    )
    if row is None or row.revoked_at is not None:
        raise NotFound(f"user {username!r} has no active token named {name!r}")
    now = utcnow()
    row.revoked_at = now
    await session.execute(
        update(AccessToken)
        .where(AccessToken.refresh_token_id == row.id, AccessToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    await session.flush()
    return row


async def _find_refresh(session: AsyncSession, token: str, user_id: int) -> RefreshToken:
    """The live refresh token ``token`` of ``user_id`` (expired ones included), or the 401."""
    row = await session.scalar(select(RefreshToken).where(RefreshToken.token_hash == crypto.hash_token(token)))
    if (
        row is None
        or not crypto.token_matches(token, row.token_hash)
        or row.user_id != user_id
        or row.revoked_at is not None
    ):
        raise invalid_refresh_token()
    user = await session.get(User, row.user_id)
    if user is None or not user.is_active:
        raise invalid_refresh_token()
    return row


async def validate_refresh_token(session: AsyncSession, token: str, user_id: int) -> tuple[RefreshToken, str]:
    """The token and its status (ACTIVE or EXPIRED); 401 when unknown, wrong user, revoked or disabled."""
    row = await _find_refresh(session, token, user_id)
    return row, status_at(row.expires_at, utcnow())


async def create_access_token(
    session: AsyncSession, refresh_token: str, user_id: int, *, lifetime: timedelta
) -> IssuedAccessToken:
    """Exchange an active refresh token for a new API access token."""
    row = await _find_refresh(session, refresh_token, user_id)
    now = utcnow()
    if status_at(row.expires_at, now) != ACTIVE:
        raise invalid_refresh_token()
    row.last_used_at = now
    token = crypto.new_token()
    access = AccessToken(
        user_id=row.user_id, refresh_token_id=row.id, token_hash=crypto.hash_token(token),
        created_at=now, expires_at=now + lifetime,
    )
    session.add(access)
    await session.flush()
    return IssuedAccessToken(access, token)


# --------------------------------------------------------------------------- access tokens


async def _find_access(session: AsyncSession, token: str) -> tuple[AccessToken, User] | None:
    # One round trip: this runs on every authenticated request.
    found = (
        await session.execute(
            select(AccessToken, User)
            .join(User, User.id == AccessToken.user_id)
            .where(AccessToken.token_hash == crypto.hash_token(token))
        )
    ).first()
    if found is None:
        return None
    row, user = found
    if not crypto.token_matches(token, row.token_hash) or row.revoked_at is not None or not user.is_active:
        return None
    return row, user


async def validate_access_token(session: AsyncSession, token: str, user_id: int) -> tuple[AccessToken, str]:
    """The token and its status (ACTIVE or EXPIRED); 401 when unknown, wrong user, revoked or disabled."""
    found = await _find_access(session, token)
    if found is None or found[0].user_id != user_id:
        raise invalid_access_token()
    return found[0], status_at(found[0].expires_at, utcnow())


async def authenticate(session: AsyncSession, token: str) -> User | None:
    """The user behind a ``TOKEN`` header value, or None if the token is not usable right now."""
    found = await _find_access(session, token)
    if found is None or found[0].expires_at <= utcnow():
        return None
    return found[1]


# Built once: SQLAlchemy caches its compiled form, so each request only binds the hash.
_AUTH_STMT = (
    select(User.id, User.username, User.is_admin, User.created_at, User.disabled_at,
           AccessToken.token_hash, AccessToken.expires_at, AccessToken.revoked_at)
    .join(User, User.id == AccessToken.user_id)
    .where(AccessToken.token_hash == bindparam("token_hash"))
)


async def authenticate_on(engine: AsyncEngine, token: str) -> User | None:
    """:func:`authenticate` for the hot path: one Core query on a bare connection, no ORM session,
    no transaction bookkeeping beyond the driver's (this runs before every authenticated request;
    the session version cost about three times as much). Returns a detached ``User``."""
    async with engine.connect() as conn:
        row = (await conn.execute(_AUTH_STMT, {"token_hash": crypto.hash_token(token)})).first()
    if row is None:
        return None
    uid, username, is_admin, created_at, disabled_at, token_hash, expires_at, revoked_at = row
    if (not crypto.token_matches(token, token_hash) or revoked_at is not None or disabled_at is not None
            or expires_at <= utcnow()):
        return None
    return User(id=uid, username=username, is_admin=is_admin, created_at=created_at, disabled_at=None)


async def issue_access_token_for(session: AsyncSession, user: User, *, lifetime: timedelta) -> IssuedAccessToken:
    """An access token not derived from a refresh token (test fixtures, future web UI sessions)."""
    now = utcnow()
    token = crypto.new_token()
    access = AccessToken(
        user_id=user.id, refresh_token_id=None, token_hash=crypto.hash_token(token),
        created_at=now, expires_at=now + lifetime,
    )
    session.add(access)
    await session.flush()
    return IssuedAccessToken(access, token)
