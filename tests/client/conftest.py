"""Fixtures of the client tests: a REAL ``fileregistry serve`` subprocess on a free port.

The server runs over the test database (``db_url``: SQLite and PostgreSQL), with users made
through the auth service beforehand: ``admin`` (admin) and ``alice`` (not admin), each with a
refresh token and an access token.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from tests.sftp.helpers import Zone

from fileregistry.db import create_nullpool_engine, session_factory, unit_of_work


@dataclass(frozen=True)
class LiveServer:
    url: str
    db_url: str
    data_dir: Path
    mirror_dir: Path
    admin_id: int
    admin_refresh: str
    admin_token: str
    user_id: int
    user_refresh: str
    user_token: str


async def _make_users(url: str) -> tuple[int, str, str, int, str, str]:
    from fileregistry.auth import tokens, users

    engine = create_nullpool_engine(url)
    try:
        async with unit_of_work(session_factory(engine)) as s:
            admin = await users.create_user(s, "admin", is_admin=True)
            alice = await users.create_user(s, "alice")
            _, admin_refresh = await tokens.create_refresh_token(s, admin, name="dag", lifetime=timedelta(days=1))
            _, alice_refresh = await tokens.create_refresh_token(s, alice, name="dag", lifetime=timedelta(days=1))
            a = await tokens.issue_access_token_for(s, admin, lifetime=timedelta(hours=1))
            u = await tokens.issue_access_token_for(s, alice, lifetime=timedelta(hours=1))
            return admin.id, admin_refresh, a.token, alice.id, alice_refresh, u.token
    finally:
        await engine.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def start_server(db_url, tmp_path) -> Iterator[Callable[..., LiveServer]]:
    """``start_server(**env)``: start ``fileregistry serve`` with extra FILEREGISTRY_* settings
    (e.g. ``ACCESS_TOKEN_TTL_HOURS="0.001"``); stopped at the end of the test."""
    procs: list[subprocess.Popen] = []
    users = asyncio.run(_make_users(db_url))

    def start(**env: str) -> LiveServer:
        port = free_port()
        data_dir = (tmp_path / f"data-{len(procs)}").resolve()
        full_env = dict(os.environ, FILEREGISTRY_DATA_DIR=str(data_dir), FILEREGISTRY_DATABASE_URL=db_url,
                        FILEREGISTRY_LOG_LEVEL="WARNING", FILEREGISTRY_SFTP_CONNECT_TIMEOUT="5",
                        FILEREGISTRY_SFTP_OP_TIMEOUT="10",
                        **{f"FILEREGISTRY_{k.upper()}": v for k, v in env.items()})
        proc = subprocess.Popen([sys.executable, "-c", "from fileregistry.cli import main; main()", "serve",
                                 "--port", str(port)], env=full_env)
        procs.append(proc)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(base + "/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"fileregistry serve did not start (exit code {proc.poll()})")
            time.sleep(0.05)
        return LiveServer(base, db_url, data_dir, data_dir / "mirror", *users)

    try:
        yield start
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


@pytest.fixture
def server(start_server) -> LiveServer:
    return start_server()


@pytest.fixture
def zone(sshd, server) -> Zone:
    """A fresh landing zone on the real sshd, mirrored under the live server's mirror dir."""
    return Zone(sshd, server.mirror_dir)


class Recorder(httpx.BaseTransport):
    """A real HTTP transport that records (method, path, status) of every request it sends."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.log: list[tuple[str, str, int]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        self.log.append((request.method, request.url.path, response.status_code))
        return response

    def close(self) -> None:
        self.inner.close()


class AsyncRecorder(httpx.AsyncBaseTransport):
    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.log: list[tuple[str, str, int]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        self.log.append((request.method, request.url.path, response.status_code))
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def revoke_access_token(db_url: str, token: str) -> None:
    """Revoke one access token in the server's database (what an admin's revocation does)."""
    from sqlalchemy import update

    from fileregistry.auth.crypto import hash_token
    from fileregistry.auth.models import AccessToken
    from fileregistry.db import utcnow

    async def go() -> None:
        engine = create_nullpool_engine(db_url)
        try:
            async with unit_of_work(session_factory(engine)) as s:
                res = await s.execute(update(AccessToken).where(AccessToken.token_hash == hash_token(token))
                                      .values(revoked_at=utcnow()))
                assert res.rowcount == 1
        finally:
            await engine.dispose()

    asyncio.run(go())
