"""``key_path`` may only name a regular key file of at most 64 KiB inside FILEREGISTRY_SFTP_KEY_DIR.

Anything else is a 422 naming the field, that never echoes key material, answers at once (a FIFO
does not hang the server) and changes nothing: registry, mirror and server tree stay as they were.
Paths outside the key directory all get one message, whether they exist or not.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import asyncssh
import pytest

from fileregistry.config import Settings
from fileregistry.errors import InvalidInput
from fileregistry.sftp.remote_keys import MAX_KEY_FILE_BYTES, OUTSIDE_KEY_DIR, load_client_keys
from fileregistry.sftp.schemas import SFTPConfig

from .helpers import call

NOT_A_KEY = "SECRET-NOTES-c2VjcmV0LWJvZHk= do not echo me"


@pytest.fixture
def outside(tmp_path, sshd) -> Path:
    """A valid, authorised key OUTSIDE the key dir: using it must still be refused."""
    d = tmp_path / "outside"
    d.mkdir()
    shutil.copyfile(sshd.user_key_path, d / "user.key")
    return d


def snapshot(client, zone):
    """Server tree, whole mirror root, registry (a failed scan is recorded in the scan history: not compared)."""
    status = call(client, "GET", "/sftp/status", zone.cfg).json()
    return zone.remote_tree(), _tree(zone.mirror_root), (status["total_tracked_files"], status["file_registry"])


def _tree(root: Path) -> dict[str, bytes]:
    if not root.exists():
        return {}
    return {p.relative_to(root).as_posix(): (p.read_bytes() if p.is_file() else b"<dir>")
            for p in sorted(root.rglob("*"))}


def assert_no_key_text(resp, sshd):
    body = sshd.user_key_text.strip().splitlines()
    for line in body[1:-1]:
        assert line not in resp.text
    assert "PRIVATE KEY" not in resp.text and "c2VjcmV0" not in resp.text and "SECRET-NOTES" not in resp.text


def key_cfg(zone, key_path: str) -> dict:
    return dict(zone.cfg, private_key=None, key_path=key_path)


# --------------------------------------------------------------------------- allowed


@pytest.mark.parametrize("form", ["relative", "absolute", "subdir", "dot-segments-inside"])
def test_key_inside_the_key_dir_works(client, zone, key_dir, sshd, form):
    (key_dir / "sub").mkdir()
    shutil.copyfile(sshd.user_key_path, key_dir / "user.key")
    shutil.copyfile(sshd.user_key_path, key_dir / "sub" / "user.key")
    key_path = {
        "relative": "user.key",
        "absolute": str(key_dir / "user.key"),
        "subdir": "sub/user.key",
        "dot-segments-inside": "sub/../user.key",
    }[form]
    zone.put("a.csv", b"aaa")
    r = call(client, "POST", "/sftp/scan", key_cfg(zone, key_path))
    assert r.status_code == 200, r.text
    assert [f["path"] for f in r.json()["new_files"]] == ["a.csv"]
    r = call(client, "POST", "/sftp/mark-processing/a.csv", key_cfg(zone, key_path))
    assert r.status_code == 200, r.text


def test_symlink_inside_the_key_dir_to_a_key_inside_works(client, zone, key_dir, sshd):
    shutil.copyfile(sshd.user_key_path, key_dir / "user.key")
    (key_dir / "alias.key").symlink_to("user.key")
    r = call(client, "POST", "/sftp/scan", key_cfg(zone, "alias.key"))
    assert r.status_code == 200, r.text


# --------------------------------------------------------------------------- refused


def _make_refused(case: str, key_dir: Path, outside: Path, sshd) -> tuple[str, str]:
    """(key_path, a fragment the 422 detail must contain) for one refused case."""
    if case == "dotdot-escape":
        return os.path.relpath(outside / "user.key", key_dir), OUTSIDE_KEY_DIR
    if case == "dotdot-escape-absolute":
        return f"{key_dir}/../../outside/user.key", OUTSIDE_KEY_DIR
    if case == "absolute-outside":
        return str(outside / "user.key"), OUTSIDE_KEY_DIR
    if case == "absolute-outside-missing":
        return "/nonexistent/key", OUTSIDE_KEY_DIR
    if case == "service-own-key":  # the confused deputy: a key of the fileregistry host itself
        return str(sshd.user_key_path), OUTSIDE_KEY_DIR
    if case == "symlink-to-outside":
        (key_dir / "link.key").symlink_to(outside / "user.key")
        return "link.key", OUTSIDE_KEY_DIR
    if case == "symlinked-dir-to-outside":
        (key_dir / "linkdir").symlink_to(outside, target_is_directory=True)
        return "linkdir/user.key", OUTSIDE_KEY_DIR
    if case == "dev-zero":
        return "/dev/zero", OUTSIDE_KEY_DIR
    if case == "symlink-to-dev-zero":
        (key_dir / "zero.key").symlink_to("/dev/zero")
        return "zero.key", OUTSIDE_KEY_DIR
    if case == "the-key-dir-itself":
        return ".", OUTSIDE_KEY_DIR
    if case == "nul-byte":
        return "user\x00.key", OUTSIDE_KEY_DIR
    if case == "directory":
        (key_dir / "adir").mkdir()
        return "adir", "is not a regular file"
    if case == "too-big":
        # A valid key padded past the cap: refused for its size, before it is parsed.
        (key_dir / "big.key").write_bytes(sshd.user_key_path.read_bytes().ljust(MAX_KEY_FILE_BYTES + 1, b"\n"))
        return "big.key", "larger than 64 KiB"
    if case == "not-a-key":
        (key_dir / "notes.txt").write_text(NOT_A_KEY)
        return "notes.txt", "is not an unencrypted OpenSSH or PEM private key"
    if case == "public-key":
        shutil.copyfile(sshd.user_key_path.with_suffix(".pub"), key_dir / "user.pub")
        return "user.pub", "is not an unencrypted OpenSSH or PEM private key"
    if case == "empty-file":
        (key_dir / "empty.key").write_bytes(b"")
        return "empty.key", "is not an unencrypted OpenSSH or PEM private key"
    if case == "encrypted-key":
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "pw-xyz", "-f", str(key_dir / "enc.key")],
                       check=True)
        return "enc.key", "is not an unencrypted OpenSSH or PEM private key"
    if case == "missing":
        return "missing.key", "no readable key file of that name in the key directory"
    if case == "dangling-symlink-inside":
        (key_dir / "dangling.key").symlink_to("gone.key")
        return "dangling.key", "no readable key file of that name in the key directory"
    raise AssertionError(case)


REFUSED = [
    "dotdot-escape", "dotdot-escape-absolute", "absolute-outside", "absolute-outside-missing", "service-own-key",
    "symlink-to-outside", "symlinked-dir-to-outside", "dev-zero", "symlink-to-dev-zero", "the-key-dir-itself",
    "nul-byte", "directory", "too-big", "not-a-key", "public-key", "empty-file", "encrypted-key", "missing",
    "dangling-symlink-inside",
]


@pytest.mark.parametrize("case", REFUSED)
def test_refused_key_path_is_422_and_changes_nothing(client, zone, key_dir, outside, sshd, case):
    key_path, expected = _make_refused(case, key_dir, outside, sshd)
    zone.put("a.csv", b"aaa")
    before = snapshot(client, zone)
    assert before[1] == {} and before[2] == (0, {})
    r = call(client, "POST", "/sftp/scan", key_cfg(zone, key_path))
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert "key_path" in detail and expected in detail, detail
    assert_no_key_text(r, sshd)
    if expected == OUTSIDE_KEY_DIR:  # one message: nothing about what exists outside
        assert detail == OUTSIDE_KEY_DIR
        assert str(outside) not in r.text and str(sshd.user_key_path) not in r.text
    assert snapshot(client, zone) == before
    assert zone.remote_tree() == {"new": b"<dir>", "new/a.csv": b"aaa"}


def test_outside_paths_get_one_message_whether_they_exist_or_not(client, zone, key_dir, outside, tmp_path):
    (tmp_path / "unreadable").write_text(NOT_A_KEY)
    (tmp_path / "unreadable").chmod(0)
    details = set()
    for key_path in (str(outside / "user.key"), str(outside / "nope.key"), str(tmp_path / "unreadable"),
                     str(outside), "/etc/shadow", "/etc/no-such-file", "/proc/self/environ", "../outside/user.key"):
        r = call(client, "POST", "/sftp/scan", key_cfg(zone, key_path))
        assert r.status_code == 422, r.text
        details.add(r.json()["detail"])
    assert details == {OUTSIDE_KEY_DIR}


def test_fifo_in_the_key_dir_answers_at_once(client, zone, key_dir, sshd):
    fifo = key_dir / "fifo.key"
    os.mkfifo(fifo)
    done = threading.Event()

    def unblock() -> None:
        # Should the server block opening the FIFO, open its write end after 10 s so the test ends (and fails).
        if not done.wait(10):
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
                os.close(fd)
            except OSError:
                pass

    guard = threading.Thread(target=unblock, daemon=True)
    guard.start()
    zone.put("a.csv", b"aaa")
    before = snapshot(client, zone)
    t0 = time.monotonic()
    try:
        r = call(client, "POST", "/sftp/scan", key_cfg(zone, "fifo.key"))
    finally:
        done.set()
        guard.join()
    assert time.monotonic() - t0 < 5
    assert r.status_code == 422, r.text
    assert "key_path" in r.json()["detail"] and "is not a regular file" in r.json()["detail"]
    assert snapshot(client, zone) == before


def test_refused_key_path_on_mark_processing_changes_nothing(client, zone, key_dir, outside, sshd):
    zone.put("a.csv", b"aaa")
    assert call(client, "POST", "/sftp/scan", zone.cfg).status_code == 200  # registered with private_key
    before = snapshot(client, zone)
    for key_path in (str(outside / "user.key"), "/dev/zero", "missing.key"):
        r = call(client, "POST", "/sftp/mark-processing/a.csv", key_cfg(zone, key_path))
        assert r.status_code == 422, r.text
        assert "key_path" in r.json()["detail"]
        assert_no_key_text(r, sshd)
    assert snapshot(client, zone) == before
    assert "new/a.csv" in before[2][1] and zone.remote_tree()["new/a.csv"] == b"aaa"


# --------------------------------------------------------------------------- settings and the loader


def test_key_dir_setting(tmp_path, monkeypatch):
    monkeypatch.delenv("FILEREGISTRY_SFTP_KEY_DIR", raising=False)
    s = Settings(data_dir=tmp_path / "d")
    assert s.resolved_sftp_key_dir == (tmp_path / "d" / "keys").resolve()
    monkeypatch.setenv("FILEREGISTRY_SFTP_KEY_DIR", str(tmp_path / "k"))
    assert Settings(data_dir=tmp_path / "d").resolved_sftp_key_dir == (tmp_path / "k").resolve()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FILEREGISTRY_SFTP_KEY_DIR", "rel/keys")
    assert Settings().resolved_sftp_key_dir == tmp_path.resolve() / "rel" / "keys"


def test_load_client_keys(tmp_path, monkeypatch, sshd):
    kd = tmp_path / "keys"
    kd.mkdir()
    shutil.copyfile(sshd.user_key_path, kd / "user.key")
    cfg = SFTPConfig(host="h", username="u", key_path="user.key")
    [key] = load_client_keys(cfg, key_dir=kd)
    assert key.get_fingerprint() == asyncssh.read_private_key(sshd.user_key_path).get_fingerprint()
    # A key file of exactly the cap is read (and parsed).
    (kd / "cap.key").write_bytes(sshd.user_key_path.read_bytes().ljust(MAX_KEY_FILE_BYTES, b"\n"))
    assert load_client_keys(SFTPConfig(host="h", username="u", key_path="cap.key"), key_dir=kd)
    # Without key_dir no key_path is allowed, whatever the environment says.
    monkeypatch.setenv("FILEREGISTRY_SFTP_KEY_DIR", str(kd))
    with pytest.raises(InvalidInput) as exc:
        load_client_keys(cfg)
    assert exc.value.message == OUTSIDE_KEY_DIR
