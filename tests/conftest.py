"""Shared fixtures: real databases (SQLite and PostgreSQL), a real OpenSSH sshd, the app.

PostgreSQL: ``FILEREGISTRY_TEST_PG_URL`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``)
must let us CREATE DATABASE; each test session gets its own fresh database, dropped afterwards.
Where PostgreSQL is unreachable its tests skip with the reason, except under ``CI=true``
where that is a failure.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from fileregistry.app import create_app
from fileregistry.config import Settings, to_async_url
from fileregistry.db import create_nullpool_engine
from fileregistry.migrate import upgrade
from fileregistry.models import Base
from fileregistry.testing.sshd import SshdServer, find_sshd, run_sshd

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PG_ADMIN_URL = os.environ.get("FILEREGISTRY_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: required, not skipped)")
    pytest.skip(reason)


def _run(coro):
    return asyncio.run(coro)


# --------------------------------------------------------------------------- databases


async def _pg_admin(sql: str) -> None:
    import asyncpg

    url = PG_ADMIN_URL.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(url, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test session (async URL)."""
    name = f"fileregistry_test_{uuid.uuid4().hex[:10]}"
    try:
        _run(_pg_admin(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - any failure means "no PostgreSQL here"
        _unavailable(f"PostgreSQL not reachable at {PG_ADMIN_URL.split('@')[-1]}: {type(exc).__name__}")
    base = to_async_url(PG_ADMIN_URL).rsplit("/", 1)[0]
    url = f"{base}/{name}"

    async def migrate() -> None:
        engine = create_nullpool_engine(url)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()

    _run(migrate())
    try:
        yield url
    finally:
        _run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """A migrated SQLite file, copied for each test (faster than migrating every time)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"

    async def migrate() -> None:
        engine = create_nullpool_engine(f"sqlite+aiosqlite:///{path}")
        try:
            await upgrade(engine)
            async with engine.connect() as conn:
                await conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        finally:
            await engine.dispose()

    _run(migrate())
    return path


async def _truncate_all(url: str) -> None:
    engine = create_nullpool_engine(url)
    try:
        names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        if names:
            async with engine.begin() as conn:
                await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    finally:
        await engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path) -> str:
    """Async database URL of an empty, migrated database: once on SQLite, once on PostgreSQL."""
    if request.param == "sqlite":
        dest = tmp_path / "fileregistry.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), dest)
        return f"sqlite+aiosqlite:///{dest}"
    url = request.getfixturevalue("pg_url")
    _run(_truncate_all(url))
    return url


# --------------------------------------------------------------------------- app


@pytest.fixture
def settings(tmp_path, db_url) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=db_url,
        mirror_dir=tmp_path / "mirror",
        sftp_connect_timeout=5,
        sftp_op_timeout=10,
        scheduler_enabled=False,  # tests/sources turn it on where they test it
    )


@pytest.fixture
def app(settings):
    return create_app(settings)


@pytest.fixture
def _started_client(app) -> Iterator[TestClient]:
    """The one TestClient of a test (lifespan started once); the client fixtures below share it."""
    with TestClient(app) as c:
        yield c


@dataclass(frozen=True)
class AuthTokens:
    admin_id: int
    admin_token: str  # API access token of user "admin" (is_admin)
    user_id: int
    user_token: str  # API access token of user "alice" (not admin)


async def _make_auth_tokens(settings: Settings) -> AuthTokens:
    from datetime import timedelta

    from fileregistry.auth import tokens, users
    from fileregistry.db import session_factory, unit_of_work

    engine = create_nullpool_engine(settings.resolved_database_url)
    try:
        async with unit_of_work(session_factory(engine)) as session:
            admin = await users.create_user(session, "admin", is_admin=True)
            alice = await users.create_user(session, "alice")
            a = await tokens.issue_access_token_for(session, admin, lifetime=timedelta(hours=1))
            u = await tokens.issue_access_token_for(session, alice, lifetime=timedelta(hours=1))
            return AuthTokens(admin.id, a.token, alice.id, u.token)
    finally:
        await engine.dispose()


@pytest.fixture
def auth_tokens(_started_client, app) -> AuthTokens:
    """Users ``admin`` (admin) and ``alice`` (not admin) with valid access tokens, made through the
    auth service directly in the app's database (after the lifespan migrated it)."""
    return _run(_make_auth_tokens(app.state.settings))


@pytest.fixture
def admin_token(auth_tokens) -> str:
    return auth_tokens.admin_token


@pytest.fixture
def user_token(auth_tokens) -> str:
    return auth_tokens.user_token


@pytest.fixture
def client(_started_client, auth_tokens) -> TestClient:
    """An HTTP client on the app (lifespan started), authenticated as an admin: its default headers
    carry ``TOKEN: <admin access token>``. Delete ``client.headers["TOKEN"]`` or use ``anon_client``
    / ``user_client`` for other callers."""
    _started_client.headers["TOKEN"] = auth_tokens.admin_token
    return _started_client


class HeaderClient:
    """Sends through the test's one TestClient with another ``TOKEN`` (or none).

    A second ``TestClient(app)`` would run the lifespan (engine, runners) a second time, so this
    wraps the started one. A ``TOKEN`` header passed explicitly to a call wins.
    Methods: ``request``, ``get``, ``post``, ``put``, ``patch``, ``delete``, ``head``, ``options``.
    """

    def __init__(self, base: TestClient, token: str | None) -> None:
        self._base = base
        self.token = token

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        follow = kwargs.pop("follow_redirects", True)
        explicit = {k.lower() for k in (kwargs.get("headers") or {})}
        req = self._base.build_request(method, url, **kwargs)
        if "token" not in explicit:
            req.headers.pop("token", None)
            if self.token is not None:
                req.headers["TOKEN"] = self.token
        return self._base.send(req, follow_redirects=follow)

    def get(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("GET", url, **kw)

    def post(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("POST", url, **kw)

    def put(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("PUT", url, **kw)

    def patch(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("PATCH", url, **kw)

    def delete(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("DELETE", url, **kw)

    def head(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("HEAD", url, **kw)

    def options(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("OPTIONS", url, **kw)


@pytest.fixture
def anon_client(_started_client) -> HeaderClient:
    """Same running app as ``client``, sending no ``TOKEN``."""
    return HeaderClient(_started_client, None)


@pytest.fixture
def user_client(_started_client, auth_tokens) -> HeaderClient:
    """Same running app as ``client``, authenticated as the non-admin user ``alice``."""
    return HeaderClient(_started_client, auth_tokens.user_token)


# --------------------------------------------------------------------------- sshd


@pytest.fixture(scope="session")
def sshd_password() -> str:
    return secrets.token_urlsafe(18)


@pytest.fixture(scope="session")
def sshd(tmp_path_factory, sshd_password) -> Iterator[SshdServer]:
    """A real OpenSSH sshd on 127.0.0.1:<free port> for the whole session."""
    if not find_sshd():
        _unavailable("OpenSSH sshd is not installed (the README's test command installs it as root)")
    with run_sshd(tmp_path_factory.mktemp("sshd"), password=sshd_password) as server:
        yield server
