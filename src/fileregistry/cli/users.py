"""``fileregistry user ...`` and ``fileregistry token ...``: work directly on the local database."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

import typer
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from fileregistry.config import Settings
from fileregistry.errors import AppError, InvalidInput

T = TypeVar("T")

user_app = typer.Typer(help="Users: create, list, disable, enable.", no_args_is_help=True)
token_app = typer.Typer(help="Refresh tokens: create (printed once), list, revoke.", no_args_is_help=True)


def _run(fn: Callable[[AsyncSession], Awaitable[T]], settings: Settings | None = None) -> T:
    """One unit of work on the configured database (migrated first when auto_migrate is on)."""
    from fileregistry.db import create_nullpool_engine, session_factory, unit_of_work
    from fileregistry.migrate import upgrade

    settings = settings or Settings()

    async def go() -> T:
        engine = create_nullpool_engine(settings.resolved_database_url)
        try:
            if settings.auto_migrate:
                await upgrade(engine)
            async with unit_of_work(session_factory(engine)) as session:
                return await fn(session)
        finally:
            await engine.dispose()

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        return asyncio.run(go())
    except DBAPIError as exc:
        # The driver's message can quote SQL parameters (hashes, names): show only its class.
        raise AppError(f"database error ({type(exc.orig).__name__}); is the schema current? "
                       "try 'fileregistry db upgrade'") from exc


def _ts(value: Any) -> str:
    from fileregistry.auth.crypto import format_ts

    return format_ts(value) or "-"


@user_app.command("create")
def user_create(
    name: str = typer.Argument(..., help="Unique username."),
    admin: bool = typer.Option(False, "--admin", help="Make the user an admin."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read a web UI password from stdin (first line)."
    ),
) -> None:
    """Create a user and print its id."""
    from fileregistry.auth import users

    password = None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise InvalidInput("empty password on stdin")
    user = _run(lambda s: users.create_user(s, name, is_admin=admin, password=password))
    typer.echo(user.id)


@user_app.command("set-password")
def user_set_password(name: str = typer.Argument(..., help="Username.")) -> None:
    """Set a user's web UI password, read from stdin (prompted without echo on a terminal)."""
    from fileregistry.auth import users

    if sys.stdin.isatty():
        import getpass

        password = getpass.getpass(f"new password for {name}: ")
        if password != getpass.getpass("again: "):
            raise InvalidInput("the two passwords differ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise InvalidInput("empty password")
    _run(lambda s: users.set_password(s, name, password))
    typer.echo(f"password of {name!r} set")


@user_app.command("list")
def user_list() -> None:
    """List users."""
    from fileregistry.auth import users

    rows = _run(users.list_users)
    typer.echo(f"{'ID':>6}  {'USERNAME':<24} {'ADMIN':<5}  {'CREATED':<27}  DISABLED")
    for u in rows:
        typer.echo(f"{u.id:>6}  {u.username:<24} {'yes' if u.is_admin else 'no':<5}  {_ts(u.created_at):<27}  "
                   f"{_ts(u.disabled_at)}")


@user_app.command("disable")
def user_disable(name: str = typer.Argument(..., help="Username.")) -> None:
    """Disable a user: all its tokens stop working at once (kept, so enable restores them)."""
    from fileregistry.auth import users

    _run(lambda s: users.set_disabled(s, name, True))
    typer.echo(f"user {name!r} disabled")


@user_app.command("enable")
def user_enable(name: str = typer.Argument(..., help="Username.")) -> None:
    """Re-enable a disabled user."""
    from fileregistry.auth import users

    _run(lambda s: users.set_disabled(s, name, False))
    typer.echo(f"user {name!r} enabled")


@token_app.command("create")
def token_create(
    user: str = typer.Argument(..., help="Username."),
    name: str | None = typer.Option(None, "--name", help="Token name, unique per user (default: random)."),
    days: int | None = typer.Option(None, "--days", min=1, help="Lifetime in days (default: "
                                    "FILEREGISTRY_REFRESH_TOKEN_TTL_DAYS, 365)."),
) -> None:
    """Create a refresh token and print it (stdout, once: it is not stored, only its hash)."""
    from fileregistry.auth import tokens, users

    settings = Settings()
    lifetime = timedelta(days=days if days is not None else settings.refresh_token_ttl_days)

    async def go(session: AsyncSession) -> tuple[Any, Any, str]:
        u = await users.get_user(session, user)
        row, token = await tokens.create_refresh_token(session, u, name=name, lifetime=lifetime)
        return u, row, token

    u, row, token = _run(go, settings)
    typer.echo(f"refresh token {row.name!r} for user {u.username!r} (user_id {u.id}), expires "
               f"{_ts(row.expires_at)}. It is shown only now:", err=True)
    typer.echo(token)


@token_app.command("list")
def token_list(user: str = typer.Argument(..., help="Username.")) -> None:
    """List a user's refresh tokens (names and dates; never the tokens)."""
    from fileregistry.auth import tokens
    from fileregistry.db import utcnow

    rows = _run(lambda s: tokens.list_refresh_tokens(s, user))
    now = utcnow()
    typer.echo(f"{'NAME':<24} {'STATUS':<8} {'CREATED':<27}  {'EXPIRES':<27}  LAST USED")
    for r in rows:
        status = "REVOKED" if r.revoked_at else tokens.status_at(r.expires_at, now)
        typer.echo(f"{r.name:<24} {status:<8} {_ts(r.created_at):<27}  {_ts(r.expires_at):<27}  "
                   f"{_ts(r.last_used_at)}")


@token_app.command("revoke")
def token_revoke(
    user: str = typer.Argument(..., help="Username."),
    name: str = typer.Argument(..., help="Token name (see 'fileregistry token list USER')."),
) -> None:
    """Revoke a user's refresh token by name, and every access token created from it."""
    from fileregistry.auth import tokens

    _run(lambda s: tokens.revoke_refresh_token(s, user, name))
    typer.echo(f"token {name!r} of user {user!r} revoked")


def bootstrap_admin(settings: Settings, host: str, port: int) -> None:
    """On the first start with no users: create ``admin`` and print its one-time refresh token."""
    from fileregistry.auth import users

    created = _run(lambda s: users.bootstrap_admin(s, token_days=settings.refresh_token_ttl_days), settings)
    if created is None:
        return
    user, token = created
    shown_host = "localhost" if host in ("0.0.0.0", "::") else host
    shown_port = port or "<port>"  # port 0: the OS picks one, uvicorn logs it
    typer.echo(f"Created admin user 'admin' (user_id {user.id}). Its refresh token, shown only this once:\n"
               f"  {token}\n"
               f"Exchange it for an API access token (send that as the TOKEN header): curl -X POST "
               f"http://{shown_host}:{shown_port}/integration/v1/createAPIAccessToken/ -H 'Content-Type: "
               f"application/json' -d '{{\"refresh_token\": \"<token>\", \"user_id\": {user.id}}}'"
               f"\nTo sign in to the web UI at http://{shown_host}:{shown_port}/ui, give it a password: "
               f"fileregistry user set-password admin")
