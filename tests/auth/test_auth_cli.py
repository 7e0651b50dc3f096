"""The ``fileregistry user`` / ``token`` commands as subprocesses on a local SQLite database."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fileregistry.auth import tokens, users
from fileregistry.config import Settings
from fileregistry.db import create_nullpool_engine, session_factory, unit_of_work

EXE = str(Path(sys.executable).parent / "fileregistry")


@pytest.fixture
def cli(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FILEREGISTRY_")}
    env["FILEREGISTRY_DATA_DIR"] = str(tmp_path / "data")

    def run(*args: str, stdin: str | None = None, ok: bool = True) -> subprocess.CompletedProcess[str]:
        p = subprocess.run([EXE, *args], input=stdin, capture_output=True, text=True, env=env, cwd=tmp_path,
                           timeout=120)
        if ok:
            assert p.returncode == 0, p.stderr
        return p

    run.settings = Settings(data_dir=tmp_path / "data")  # type: ignore[attr-defined]
    return run


def _db(settings: Settings, fn):
    async def go():
        engine = create_nullpool_engine(settings.resolved_database_url)
        try:
            async with unit_of_work(session_factory(engine)) as s:
                return await fn(s)
        finally:
            await engine.dispose()

    return asyncio.run(go())


def test_user_commands(cli):
    uid = cli("user", "create", "bob").stdout.strip()
    assert uid.isdigit()
    aid = cli("user", "create", "root", "--admin", "--password-stdin", stdin="hunter2-long\n").stdout.strip()
    assert int(aid) == int(uid) + 1
    out = cli("user", "list").stdout
    assert "bob" in out and "root" in out and "hunter2" not in out

    p = cli("user", "create", "bob", ok=False)
    assert p.returncode == 1 and p.stderr.strip() == "error: user 'bob' already exists"
    p = cli("user", "create", "bad/name", ok=False)
    assert p.returncode == 1 and p.stderr.startswith("error: username")
    p = cli("user", "create", "nopw", "--password-stdin", stdin="\n", ok=False)
    assert p.returncode == 1 and "empty password" in p.stderr

    cli("user", "disable", "bob")
    listed = [u for u in _db(cli.settings, users.list_users)]
    bob, root = listed
    assert bob.disabled_at is not None and not bob.is_admin
    assert root.is_admin and root.password_hash and root.password_hash.startswith("$argon2")
    from fileregistry.auth.crypto import verify_password

    assert verify_password("hunter2-long", root.password_hash)
    cli("user", "enable", "bob")
    assert _db(cli.settings, lambda s: users.get_user(s, "bob")).disabled_at is None
    p = cli("user", "disable", "ghost", ok=False)
    assert p.returncode == 1 and p.stderr.strip() == "error: no user 'ghost'"


def test_user_set_password(cli):
    from fileregistry.auth.crypto import verify_password

    cli("user", "create", "carol")
    assert _db(cli.settings, lambda s: users.get_user(s, "carol")).password_hash is None
    p = cli("user", "set-password", "carol", stdin="s3cret-Pass\n")
    assert p.stdout.strip() == "password of 'carol' set" and "s3cret" not in p.stdout + p.stderr
    assert verify_password("s3cret-Pass", _db(cli.settings, lambda s: users.get_user(s, "carol")).password_hash)
    p = cli("user", "set-password", "carol", stdin="\n", ok=False)
    assert p.returncode == 1 and p.stderr.strip() == "error: empty password"
    p = cli("user", "set-password", "ghost", stdin="x\n", ok=False)
    assert p.returncode == 1 and p.stderr.strip() == "error: no user 'ghost'"
    assert verify_password("s3cret-Pass", _db(cli.settings, lambda s: users.get_user(s, "carol")).password_hash)


def test_token_commands(cli):
    uid = int(cli("user", "create", "bob").stdout)
    p = cli("token", "create", "bob", "--name", "ci", "--days", "7")
    token = p.stdout.strip()
    assert len(token) >= 43 and "\n" not in token
    assert "'ci'" in p.stderr and token not in p.stderr

    row, status = _db(cli.settings, lambda s: tokens.validate_refresh_token(s, token, uid))
    assert status == "ACTIVE" and row.name == "ci"
    assert 6.9 < (row.expires_at - row.created_at).total_seconds() / 86400 < 7.1

    p = cli("token", "create", "bob", "--name", "ci", ok=False)
    assert p.returncode == 1 and "already has a token named 'ci'" in p.stderr
    default = cli("token", "create", "bob").stdout.strip()
    assert default != token

    out = cli("token", "list", "bob").stdout
    assert "ci" in out and "ACTIVE" in out and token not in out and default not in out

    cli("token", "revoke", "bob", "ci")
    assert "REVOKED" in cli("token", "list", "bob").stdout
    with pytest.raises(Exception):
        _db(cli.settings, lambda s: tokens.validate_refresh_token(s, token, uid))
    p = cli("token", "revoke", "bob", "ci", ok=False)
    assert p.returncode == 1 and p.stderr.startswith("error: ")
    p = cli("token", "create", "ghost", ok=False)
    assert p.returncode == 1 and p.stderr.strip() == "error: no user 'ghost'"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("user", "create"), "error: Missing argument 'name'."),
        (("source", "add", "x", "--host", "h"), "error: Missing option '--username'."),
        (("source", "add", "x", "--host", "h", "--username", "u", "--port", "abc"), "error: Invalid value for '--port'"),
        (("nosuch",), "error: No such command 'nosuch'."),
        (("user", "list", "--bogus"), "error: No such option: --bogus"),
    ],
)
def test_usage_errors_are_one_line_and_exit_1(cli, args, message):
    p = cli(*args, ok=False)
    assert p.returncode == 1, p.stderr
    assert p.stderr.startswith(message) and p.stderr.count("\n") == 1 and "Traceback" not in p.stderr
    assert p.stdout == ""


def test_help_still_works(cli):
    p = cli("--help")
    assert "Usage: fileregistry" in p.stdout and p.returncode == 0
    assert "source" in cli("source", "--help").stdout
