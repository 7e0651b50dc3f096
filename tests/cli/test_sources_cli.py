"""``fileregistry source add/list/remove``, ``scan``, ``status``, ``mark`` as subprocesses, on the real sshd."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from fileregistry.db import create_nullpool_engine, session_factory
from fileregistry.sftp.mirror import encode_key
from fileregistry.sftp.names import connection_key
from fileregistry.testing.sshd import ensure_password_user, free_port

pytestmark = pytest.mark.sshd


def _add(cli, name: str, zone, *extra: str, stdin: str | None = None):
    return cli("source", "add", name, "--host", zone.sshd.host, "--port", str(zone.sshd.port),
               "--username", zone.sshd.username, "--remote-path", str(zone.path), *extra, stdin=stdin)


def test_source_workflow_with_key_file(cli, zone, sshd):
    cli.secrets.append(sshd.user_key_text.splitlines()[1])  # the base64 body of the private key
    zone.put("a.csv", b"1,2\n", mtime=1_700_000_000)
    zone.put("b.csv", b"3,4,5\n")
    zone.put("bad\\name.csv", b"x")  # not addressable by the API: reported as failed

    out = _add(cli, "partner-a", zone, "--key-file", str(sshd.user_key_path)).stdout
    assert "source 'partner-a' saved" in out and "auth: private key" in out

    listed = cli("source", "list").stdout
    assert listed.splitlines()[0].split() == ["NAME", "HOST:PORT", "USER", "REMOTE", "PATH", "INTERVAL", "AUTH",
                                             "HOST", "KEY"]
    row = listed.splitlines()[1]
    assert "partner-a" in row and f"{sshd.host}:{sshd.port}" in row and str(zone.path) in row
    assert "private key" in row and "first use" in row
    as_json = json.loads(cli("source", "list", "--json").stdout)
    assert as_json[0]["source"] == "partner-a" and as_json[0]["config"]["private_key"] == "********"

    p = cli("scan", "partner-a")
    assert "scanned partner-a: 3 files in new/, 2 downloaded (2 new, 0 updated), 1 failed" in p.stdout
    assert re.search(r"^new\s+a\.csv\s+4 B\s+2023-11-14 22:13:20Z$", p.stdout, re.M), p.stdout
    assert re.search(r"^new\s+b\.csv\s+6 B", p.stdout, re.M)
    assert re.search(r"^FAILED\s+bad\\name\.csv\s+not supported", p.stdout, re.M)
    assert zone.mirror_tree()["new/a.csv"] == b"1,2\n" and zone.mirror_tree()["new/b.csv"] == b"3,4,5\n"

    again = cli("scan", "partner-a", "--json")
    data = json.loads(again.stdout)
    assert data["new_files"] == [] and data["total_files"] == 3 and data["failed_files"][0]["path"] == "bad\\name.csv"

    st = cli("status", "partner-a").stdout
    assert "new 2, processing 0, completed 0, error 0" in st
    assert re.search(r"^last scan\s+\S+ \S+ \(cli\), [0-9.]+ s, ok: 3 listed, 0 downloaded, 1 failed", st, re.M), st
    assert "schedule   none" in st or re.search(r"^schedule\s+none", st, re.M)
    assert re.search(r"^new\s+a\.csv\s+4 B", st, re.M) and re.search(r"^new\s+b\.csv", st, re.M)

    # new -> processing -> completed, on the server and in the mirror
    p = cli("mark", "partner-a", "a.csv", "processing")
    a_proc = p.stdout.strip()
    assert re.fullmatch(r"a_\d{14}\.csv", a_proc), p.stdout
    assert "moved to processing" in p.stderr
    remote = zone.remote_tree()
    assert f"processing/{a_proc}" in remote and "new/a.csv" not in remote
    assert zone.mirror_tree()[f"processing/{a_proc}"] == b"1,2\n"
    assert cli("mark", "partner-a", a_proc, "completed").stdout.strip() == a_proc
    assert zone.remote_tree()[f"completed/{a_proc}"] == b"1,2\n"
    assert zone.mirror_tree()[f"completed/{a_proc}"] == b"1,2\n"

    # new -> processing -> error
    b_proc = cli("mark", "partner-a", "b.csv", "processing").stdout.strip()
    assert cli("mark", "partner-a", b_proc, "error").stdout.strip() == b_proc
    assert zone.remote_tree()[f"error/{b_proc}"] == b"3,4,5\n"
    assert f"processing/{b_proc}" not in zone.remote_tree()

    # a wrong move is one line, and changes nothing
    line = cli.fails("mark", "partner-a", a_proc, "error")
    assert "processing" in line
    assert zone.remote_tree()[f"completed/{a_proc}"] == b"1,2\n"

    st = json.loads(cli("status", "partner-a", "--json", "--limit", "1").stdout)
    assert st["counts"] == {"new": 0, "processing": 0, "completed": 1, "error": 1}
    assert st["last_scan"]["trigger"] == "cli" and len(st["newest_files"]) == 1
    assert st["newest_files"][0]["name"] == b_proc and st["newest_files"][0]["state"] == "error"

    assert cli("source", "remove", "partner-a").stdout.strip() == "source 'partner-a' removed"
    assert cli.fails("status", "partner-a") == "error: SFTP source 'partner-a' not found"
    assert cli("source", "list").stdout.strip().splitlines()[1:] == []


def test_source_with_password_stdin(cli, sshd, sshd_password, settings, request):
    if not sshd.password_user:
        pytest.skip("the password user needs root (useradd)")
    ensure_password_user(sshd_password)  # system-wide: another test session may have reset it
    cli.secrets.append(sshd_password)
    # pytest's temp dirs are private to root: a landing zone the password user can reach
    base = Path(tempfile.mkdtemp(prefix="fr-cli-pw-"))
    request.addfinalizer(lambda: shutil.rmtree(base, ignore_errors=True))
    base.chmod(0o755)
    (base / "new").mkdir()
    (base / "new" / "p.csv").write_bytes(b"pw")
    zone = SimpleNamespace(path=base, mirror=settings.resolved_mirror_dir / encode_key(
        connection_key(sshd.host, str(base))))
    p = cli("source", "add", "pw-src", "--host", sshd.host, "--port", str(sshd.port), "--username",
            sshd.password_user, "--remote-path", str(zone.path), "--password-stdin", "--interval", "600",
            stdin=sshd_password + "\n")
    assert "auth: password" in p.stdout and "every 600 s" in p.stdout
    row = cli("source", "list").stdout.splitlines()[1]
    assert "password" in row and "600 s" in row
    out = cli("scan", "pw-src").stdout
    assert "1 downloaded (1 new, 0 updated)" in out and "p.csv" in out
    assert (zone.mirror / "new" / "p.csv").read_bytes() == b"pw"
    st = cli("status", "pw-src").stdout
    assert re.search(r"^schedule\s+every 600 s, next ", st, re.M), st

    async def stored() -> tuple[str, str]:
        from sqlalchemy import text

        engine = create_nullpool_engine(settings.resolved_database_url)
        try:
            async with engine.connect() as conn:
                row = (await conn.execute(text("SELECT config_json, secrets_encrypted FROM sftp_sources"))).one()
                return row[0], row[1]
        finally:
            await engine.dispose()

    config_json, secrets = asyncio.run(stored())
    assert sshd_password not in config_json and sshd_password not in secrets

    # a wrong password: the scan fails with one line naming the user, never the password
    cli("source", "add", "pw-src", "--replace", "--host", sshd.host, "--port", str(sshd.port), "--username",
        sshd.password_user, "--remote-path", str(zone.path), "--password-stdin", stdin="wrong-" + sshd_password)
    line = cli.fails("scan", "pw-src")
    assert line == f"error: SFTP server {sshd.host}:{sshd.port}: authentication failed for user {sshd.password_user!r}"


def test_add_refuses_an_existing_name_without_replace(cli, zone, sshd):
    _add(cli, "dup", zone, "--key-file", str(sshd.user_key_path))
    assert cli.fails("source", "add", "dup", "--host", "other.example", "--username", "u", "--key-file",
                     str(sshd.user_key_path)) == "error: source 'dup' already exists; use --replace to overwrite it"
    assert "other.example" not in cli("source", "list").stdout
    cli("source", "add", "dup", "--replace", "--host", "other.example", "--username", "u", "--key-file",
        str(sshd.user_key_path), "--host-key", sshd.host_pubkey_line)
    row = cli("source", "list").stdout.splitlines()[1]
    assert "other.example:22" in row and "pinned" in row


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # checked before the database is used
def test_argument_errors_are_one_line(cli, sshd, tmp_path):
    key = str(sshd.user_key_path)
    not_a_key = tmp_path / "not-a-key"
    not_a_key.write_text("hello\n")
    base = ["--host", sshd.host, "--port", str(sshd.port), "--username", sshd.username]
    cases = {
        ("source", "add", "bad/name", *base, "--key-file", key): "error: invalid source name 'bad/name'",
        ("scan", "../etc"): "error: invalid source name '../etc'",
        ("source", "add", "k", *base, "--key-file", str(tmp_path / "missing.key")):
            f"error: key file '{tmp_path / 'missing.key'}' could not be read: No such file or directory",
        ("source", "add", "k", *base, "--key-file", str(not_a_key)):
            f"error: key file '{not_a_key}' is not an unencrypted OpenSSH or PEM private key",
        ("source", "add", "k", *base): "error: an authentication method is required",
        ("source", "add", "k", *base, "--key-file", key, "--interval", "0"): "error: --interval: seconds from 1",
        ("source", "add", "k", *base, "--key-file", key, "--host-key", "nonsense"): "error: host_key must be",
        ("source", "add", "k", "--host", "bad host", "--username", "u", "--key-file", key):
            "error: host: host must not contain whitespace",
        ("status", "ghost", "--limit", "-1"): "error: --limit must be 0 or more",
        ("mark", "any", "a.csv", "done"): "error: state must be one of processing, completed, error (got 'done')",
    }
    for args, expected in cases.items():
        assert cli.fails(*args).startswith(expected), args
    assert cli.fails("source", "add", "k", *base, "--password-stdin", stdin="\n") == (
        "error: --password-stdin: empty password on stdin")


def test_errors_are_one_line(cli, zone, sshd):
    key = str(sshd.user_key_path)
    base = ["--host", sshd.host, "--port", str(sshd.port), "--username", sshd.username]
    for args in [("scan", "ghost"), ("status", "ghost"), ("mark", "ghost", "a.csv", "processing"),
                 ("source", "remove", "ghost"), ("vfs-from-sftp", "ghost")]:
        assert cli.fails(*args) == "error: SFTP source 'ghost' not found", args

    _add(cli, "ok", zone, "--key-file", key)
    zone.put("a.csv", b"a")
    assert cli.fails("mark", "ok", "a.csv", "completed").startswith("error: ")  # not in processing
    assert cli.fails("mark", "ok", "../x", "processing").startswith("error: Invalid filename")

    # unreachable host: a port nobody listens on
    port = free_port()
    cli("source", "add", "down", "--host", "127.0.0.1", "--port", str(port), "--username", "u", "--key-file", key)
    assert cli.fails("scan", "down") == f"error: SFTP server 127.0.0.1:{port}: connection refused"
    # a missing remote path
    cli("source", "add", "nodir", *base, "--key-file", key, "--remote-path", str(zone.path / "nope"))
    assert "not found on SFTP server" in cli.fails("scan", "nodir")
    assert len(json.loads(cli("source", "list", "--json").stdout)) == 3  # nothing above broke the database


def test_scan_waits_for_a_running_scan_then_fails(cli, zone, sshd, settings):
    from fileregistry.sftp.lease import _release, try_acquire

    _add(cli, "busy", zone, "--key-file", str(sshd.user_key_path))
    zone.put("a.csv", b"a")

    async def hold(acquire: bool) -> bool:
        engine = create_nullpool_engine(settings.resolved_database_url)
        try:
            sessions = session_factory(engine)
            if acquire:
                return await try_acquire(sessions, zone.key, "another-process", 60)
            await _release(sessions, zone.key, "another-process")
            return True
        finally:
            await engine.dispose()

    assert asyncio.run(hold(True))
    line = cli.fails("scan", "busy", env={"FILEREGISTRY_SCAN_WAIT_TIMEOUT": "1"})
    assert line == f"error: a scan of {zone.key} is already running; retry when it has finished"
    assert cli.fails("scan", "busy", "--no-wait") == line
    asyncio.run(hold(False))
    assert "1 downloaded" in cli("scan", "busy").stdout


def test_scan_shows_a_progress_bar_on_a_terminal(cli, zone, sshd):
    """On a TTY the bar is drawn (on stderr) and the summary follows; --quiet leaves the bar out."""
    import pty

    _add(cli, "tty", zone, "--key-file", str(sshd.user_key_path))
    for i in range(20):
        zone.put(f"f{i:02d}.bin", os.urandom(2048))

    def run_on_pty(*args: str) -> tuple[int, str]:
        master, slave = pty.openpty()
        proc = subprocess.Popen(cli.argv(*args), stdin=subprocess.DEVNULL, stdout=slave, stderr=slave,
                                env={**cli.env, "COLUMNS": "120", "TERM": "xterm"}, cwd=cli.cwd)
        os.close(slave)
        chunks = []
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        os.close(master)
        return proc.wait(60), b"".join(chunks).decode("utf-8", "replace")

    rc, out = run_on_pty("scan", "tty")
    assert rc == 0, out
    cli.check_output(out)
    assert "scanned tty: 20 files in new/, 20 downloaded" in out
    assert "\x1b[" in out and "tty: " in out  # rich drew (and cleared) its live bar
    zone.put("late.bin", b"z")
    rc, out = run_on_pty("scan", "tty", "--quiet")
    assert rc == 0 and "1 downloaded" in out and "\x1b[" not in out, out
