"""The foundation: schema, settings, app factory and the test fixtures themselves."""

from __future__ import annotations

import asyncio
import socket

import asyncssh
import pytest

from fileregistry.config import Settings, to_async_url
from fileregistry.db import create_nullpool_engine
from fileregistry.migrate import head_revision, is_current


def test_healthz(client):
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


def test_openapi_served(client):
    r = client.get("/openapi.json")
    assert r.status_code == 200
    assert r.json()["info"]["title"] == "fileregistry"


def test_schema_is_at_head(settings, client):
    async def check() -> bool:
        engine = create_nullpool_engine(settings.resolved_database_url)
        try:
            return await is_current(engine)
        finally:
            await engine.dispose()

    assert head_revision() is not None
    assert asyncio.run(check())


def test_settings_defaults(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    for k in ("FILEREGISTRY_DATA_DIR", "FILEREGISTRY_DATABASE_URL", "FILEREGISTRY_MIRROR_DIR"):
        monkeypatch.delenv(k, raising=False)
    s = Settings()
    assert s.resolved_database_url == f"sqlite+aiosqlite:///{(tmp_path / 'fileregistry-data' / 'fileregistry.db')}"
    assert s.resolved_mirror_dir == tmp_path / "fileregistry-data" / "mirror"


def test_settings_from_env(monkeypatch, tmp_path):
    monkeypatch.setenv("FILEREGISTRY_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("FILEREGISTRY_DATABASE_URL", "postgresql://u:p%40ss@db:5432/x")
    monkeypatch.setenv("FILEREGISTRY_MIRROR_DIR", str(tmp_path / "m"))
    s = Settings()
    assert s.resolved_database_url == "postgresql+asyncpg://u:p%40ss@db:5432/x"
    assert s.resolved_mirror_dir == tmp_path / "m"
    assert "p%40ss" not in repr(s)  # the URL is a secret


@pytest.mark.parametrize(
    "given,expected",
    [
        ("postgresql://h/db", "postgresql+asyncpg://h/db"),
        ("postgres://h/db", "postgresql+asyncpg://h/db"),
        ("postgresql+asyncpg://h/db", "postgresql+asyncpg://h/db"),
        ("sqlite:///x.db", "sqlite+aiosqlite:///x.db"),
    ],
)
def test_async_url_mapping(given, expected):
    assert to_async_url(given) == expected


def test_sshd_fixture_is_real_openssh(sshd):
    with socket.create_connection((sshd.host, sshd.port), timeout=5) as s:
        banner = s.recv(64)
    assert banner.startswith(b"SSH-2.0-OpenSSH_")

    async def listdir() -> list[str]:
        key = asyncssh.import_private_key(sshd.user_key_text)
        async with asyncssh.connect(
            sshd.host, port=sshd.port, username=sshd.username, client_keys=[key],
            known_hosts=([asyncssh.import_public_key(sshd.host_pubkey_line)], [], []),
        ) as conn, conn.start_sftp_client() as sftp:
            return await sftp.listdir(str(sshd.root))

    (sshd.root / "probe.txt").write_text("x")
    assert "probe.txt" in asyncio.run(listdir())


def test_validation_errors_never_echo_the_input(client):
    # A query/body value that fails FastAPI's own validation must not come back in the 422 body.
    secret = "s3cr3t-value-that-must-not-leak"
    r = client.get("/api/v1/filesystem/not-a-number-" + secret + "/")
    assert r.status_code in (404, 422)
    assert secret not in r.text
    r = client.post("/api/v1/filesystem/", json={"name": {"password": secret}})
    assert r.status_code == 422
    assert secret not in r.text
    assert r.json()["detail"][0]["loc"][-1] == "name"


def test_locked_database_is_503_with_retry_after_and_changes_nothing(tmp_path, monkeypatch):
    """Another writer holds SQLite's write lock past the busy timeout: a clear 503 (retry), not a 500."""
    import sqlite3

    from fastapi.testclient import TestClient

    from fileregistry import db
    from fileregistry.app import create_app
    from tests.conftest import _make_auth_tokens

    monkeypatch.setattr(db, "SQLITE_BUSY_TIMEOUT_S", 0.3)
    s = Settings(data_dir=tmp_path / "data", scheduler_enabled=False)
    with TestClient(create_app(s)) as c:
        c.headers["TOKEN"] = asyncio.run(_make_auth_tokens(s)).admin_token
        assert c.get("/api/v1/filesystem/").json() == []
        other = sqlite3.connect(s.data_dir / "fileregistry.db", isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # another process is writing
            r = c.post("/api/v1/filesystem/", json={"name": "blocked"})
            assert r.status_code == 503, r.text
            assert r.json() == {"detail": "the database is unavailable or busy; retry later"}
            assert r.headers["Retry-After"] == "5"
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert c.get("/api/v1/filesystem/").json() == []  # nothing was half-written
        assert c.post("/api/v1/filesystem/", json={"name": "blocked"}).status_code == 201
