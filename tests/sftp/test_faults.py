"""Bad input and faults: each gets the right status and message, and changes nothing."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import threading
from pathlib import Path

import asyncssh
import pytest

from fileregistry.testing.sshd import ensure_password_user, free_port

from .helpers import call


def snapshot(client, zone):
    return (
        zone.remote_tree(),
        zone.mirror_tree(),
        call(client, "GET", "/sftp/status", zone.cfg).json()["file_registry"],
    )


def assert_no_secret(resp, *secrets):
    for s in secrets:
        if s:
            assert s not in resp.text
            for line in s.strip().splitlines()[1:2]:  # a line of the key body
                assert line not in resp.text


@pytest.fixture
def scanned(client, zone):
    zone.put("a.csv", b"aaa")
    zone.put("b.csv", b"bbb")
    assert call(client, "POST", "/sftp/scan", zone.cfg).status_code == 200
    return zone


# --------------------------------------------------------------------------- bad filenames

BAD_NAMES = [
    ("", "empty"),
    ("%2E", "'.'"),
    ("%2E%2E", "'..'"),
    ("..%2Fa.csv", "'/'"),
    ("a%2Fb.csv", "'/'"),
    ("new/a.csv", "'/'"),
    ("a%5Cb.csv", "'\\\\'"),
    ("a%00b.csv", "NUL"),
    ("%00", "NUL"),
]


@pytest.mark.parametrize("endpoint", ["mark-processing", "mark-completed", "mark-error"])
@pytest.mark.parametrize("raw,what", BAD_NAMES)
def test_bad_filename_is_400_before_any_io(client, scanned, endpoint, raw, what):
    before = snapshot(client, scanned)
    r = call(client, "POST", f"/sftp/{endpoint}/{raw}", scanned.cfg)
    assert r.status_code == 400, r.text
    detail = r.json()["detail"]
    assert "filename" in detail.lower()
    if what in ("empty",):
        assert "empty" in detail
    elif what == "NUL":
        assert "\\x00" in detail or "NUL" in detail
    else:
        assert what.strip("'").replace("\\\\", "\\") in detail
    assert snapshot(client, scanned) == before
    assert_no_secret(r, scanned.cfg["private_key"])
    # Before any I/O: even an unreachable server gives the 400.
    dead = dict(scanned.cfg, port=free_port())
    assert call(client, "POST", f"/sftp/{endpoint}/{raw}", dead).status_code == 400


# --------------------------------------------------------------------------- wrong state


def test_wrong_state(client, scanned):
    z = scanned
    before = snapshot(client, z)
    r = call(client, "POST", "/sftp/mark-processing/nope.csv", z.cfg)
    assert r.status_code == 404 and "nope.csv" in r.json()["detail"] and "new" in r.json()["detail"]
    r = call(client, "POST", "/sftp/mark-completed/a.csv", z.cfg)
    assert r.status_code == 409 and "'new'" in r.json()["detail"], r.text
    r = call(client, "POST", "/sftp/mark-error/a.csv", z.cfg)
    assert r.status_code == 409 and "'new'" in r.json()["detail"]
    r = call(client, "POST", "/sftp/mark-completed/nope.csv", z.cfg)
    assert r.status_code == 404 and "processing" in r.json()["detail"]
    assert snapshot(client, z) == before

    name = call(client, "POST", "/sftp/mark-processing/a.csv", z.cfg).json()["new_filename"]
    before = snapshot(client, z)
    r = call(client, "POST", "/sftp/mark-processing/a.csv", z.cfg)
    assert r.status_code == 409 and "'processing'" in r.json()["detail"] and name in r.json()["detail"]
    r = call(client, "POST", f"/sftp/mark-processing/{name}", z.cfg)
    assert r.status_code == 409 and "'processing'" in r.json()["detail"]
    assert snapshot(client, z) == before

    assert call(client, "POST", f"/sftp/mark-completed/{name}", z.cfg).status_code == 200
    before = snapshot(client, z)
    for ep in ("mark-completed", "mark-error"):
        r = call(client, "POST", f"/sftp/{ep}/{name}", z.cfg)
        assert r.status_code == 409 and "'completed'" in r.json()["detail"]
    assert snapshot(client, z) == before


def test_other_connection_is_not_seen(client, scanned, sshd):
    other = dict(scanned.cfg, remote_path=scanned.cfg["remote_path"] + "/")
    r = call(client, "POST", "/sftp/mark-processing/a.csv", other)
    assert r.status_code == 404
    assert call(client, "GET", "/sftp/status", other).json()["total_tracked_files"] == 0
    call(client, "DELETE", "/sftp/clear-registry", other)
    assert call(client, "GET", "/sftp/status", scanned.cfg).json()["total_tracked_files"] == 2


# --------------------------------------------------------------------------- missing directories


def test_missing_remote_path_and_new(client, zone):
    cfg = dict(zone.cfg, remote_path=zone.cfg["remote_path"] + "/nowhere")
    r = call(client, "POST", "/sftp/scan", cfg)
    assert r.status_code == 404 and "nowhere" in r.json()["detail"] and "remote_path" in r.json()["detail"]
    (zone.path / "new").rmdir()
    r = call(client, "POST", "/sftp/scan", zone.cfg)
    assert r.status_code == 404, r.text
    assert f"{zone.path}/new" in r.json()["detail"]
    assert not zone.mirror.exists() or zone.mirror_tree() == {}


# --------------------------------------------------------------------------- mirror escape


def test_remote_path_cannot_escape_the_mirror(client, zone, settings, tmp_path):
    escaping = f"{zone.sshd.root}/../{zone.sshd.root.name}/{zone.path.name}/../{zone.path.name}"
    zone.put("a.csv", b"x")
    cfg = dict(zone.cfg, remote_path=escaping)
    outside_before = sorted(p for p in tmp_path.rglob("*") if settings.resolved_mirror_dir not in p.parents)
    r = call(client, "POST", "/sftp/scan", cfg)
    assert r.status_code == 200, r.text
    name = call(client, "POST", "/sftp/mark-processing/a.csv", cfg).json()["new_filename"]
    root = settings.resolved_mirror_dir
    files = [p for p in root.rglob("*") if p.is_file()]
    assert [p.relative_to(root).parts[1:] for p in files] == [("processing", name)]
    assert len(list(root.iterdir())) == 1 and "%2F" in next(root.iterdir()).name
    outside_after = sorted(p for p in tmp_path.rglob("*") if root not in p.parents and p != root)
    assert [p for p in outside_after if p not in outside_before and "data" not in p.parts] == []

    r = call(client, "DELETE", "/sftp/clear-registry", dict(cfg, remote_path="/../../etc"))
    assert r.status_code == 200
    assert (root / next(root.iterdir()).name).exists()


# --------------------------------------------------------------------------- config validation


def test_config_needs_an_auth_method(client, zone):
    cfg = {k: v for k, v in zone.cfg.items() if k != "private_key"}
    r = call(client, "POST", "/sftp/scan", cfg)
    assert r.status_code == 422
    d = r.json()["detail"]
    assert "password" in d and "key_path" in d and "private_key" in d


def test_bad_private_key_is_not_echoed(client, zone):
    secret_key = "-----BEGIN OPENSSH PRIVATE KEY-----\nc2VjcmV0LWtleS1ib2R5LW5vdC1hLWtleQ==\n-----END OPENSSH PRIVATE KEY-----\n"
    r = call(client, "POST", "/sftp/scan", dict(zone.cfg, private_key=secret_key))
    assert r.status_code == 422 and "private_key" in r.json()["detail"]
    assert "c2VjcmV0" not in r.text
    r = call(client, "POST", "/sftp/scan", dict(zone.cfg, password=12345678901, private_key=None))
    assert r.status_code == 422 and "12345678901" not in r.text
    r = call(client, "POST", "/sftp/scan", dict(zone.cfg, key_path="/nonexistent/key"))
    assert r.status_code == 422 and "/nonexistent/key" in r.json()["detail"]
    r = client.request("POST", "/sftp/scan", content=b"{not json")
    assert r.status_code == 422


@pytest.mark.parametrize(
    "kind", [("rsa", "2048", "PEM"), ("rsa", "2048", None), ("ecdsa", "256", "PEM"), ("ecdsa", "384", None),
             ("ed25519", None, None)]
)
def test_private_key_formats(client, zone, tmp_path, kind):
    algo, bits, fmt = kind
    path = tmp_path / f"k_{algo}"
    args = ["ssh-keygen", "-q", "-t", algo, "-N", "", "-f", str(path)]
    if bits:
        args += ["-b", bits]
    if fmt == "PEM":
        args += ["-m", "PEM"]
    subprocess.run(args, check=True)
    auth = zone.sshd.user_key_path.parent / "authorized_keys"
    original = auth.read_text()
    auth.write_text(original + path.with_suffix(".pub").read_text())
    try:
        text = path.read_text()
        if fmt == "PEM":
            assert text.startswith(("-----BEGIN RSA PRIVATE KEY-----", "-----BEGIN EC PRIVATE KEY-----"))
        else:
            assert text.startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
        r = call(client, "POST", "/sftp/scan", dict(zone.cfg, private_key=text))
        assert r.status_code == 200, r.text
        r = call(client, "POST", "/sftp/scan", dict(zone.cfg, private_key=None, key_path=str(path)))
        assert r.status_code == 200, r.text
        # Escaped newlines (a key pasted into a JSON config as one line) work too.
        r = call(client, "POST", "/sftp/scan", dict(zone.cfg, private_key=text.replace("\n", "\\n")))
        assert r.status_code == 200, r.text
    finally:
        auth.write_text(original)


# --------------------------------------------------------------------------- connection failures


def test_connection_refused(client, zone):
    cfg = dict(zone.cfg, port=free_port())
    r = call(client, "POST", "/sftp/scan", cfg)
    assert r.status_code == 502 and "refused" in r.json()["detail"] and "127.0.0.1" in r.json()["detail"]
    assert_no_secret(r, cfg["private_key"])


def test_unknown_host(client, zone):
    cfg = dict(zone.cfg, host="nonexistent.invalid", password="hunter2-secret")
    r = call(client, "POST", "/sftp/scan", cfg)
    assert r.status_code == 502, r.text
    assert "unknown host" in r.json()["detail"] and "nonexistent.invalid" in r.json()["detail"]
    assert_no_secret(r, "hunter2-secret", cfg["private_key"])


def test_wrong_key_is_auth_failure(client, zone):
    other = asyncssh.generate_private_key("ssh-ed25519").export_private_key().decode()
    r = call(client, "POST", "/sftp/scan", dict(zone.cfg, private_key=other))
    assert r.status_code == 502 and "authentication failed" in r.json()["detail"]
    assert zone.sshd.host in r.json()["detail"]
    assert_no_secret(r, other)


def test_password_auth(client, zone, sshd, request):
    if not sshd.password_user:
        pytest.skip("password auth against OpenSSH needs root (see test_password_auth_fake_server)")
    # The test user is system-wide: another test session on this machine may have reset its password.
    ensure_password_user(sshd.password)
    # pytest's temp dirs are private to root: give the password user a zone it can reach.
    base = Path(tempfile.mkdtemp(prefix="fr-pw-"))
    request.addfinalizer(lambda: shutil.rmtree(base, ignore_errors=True))
    base.chmod(0o755)
    (base / "new").mkdir()
    (base / "new" / "p.csv").write_bytes(b"pw")
    cfg = dict(zone.cfg, username=sshd.password_user, password=sshd.password, private_key=None,
               remote_path=str(base))
    r = call(client, "POST", "/sftp/scan", cfg)
    assert r.status_code == 200, r.text
    assert [f["path"] for f in r.json()["new_files"]] == ["p.csv"]
    bad = dict(cfg, password="wrong-" + sshd.password)
    r = call(client, "POST", "/sftp/scan", bad)
    assert r.status_code == 502 and "authentication failed" in r.json()["detail"]
    assert_no_secret(r, bad["password"], sshd.password)


def test_password_auth_fake_server(client, fake_sftp):
    cfg = fake_sftp.config("/zone")
    (fake_sftp.root / "zone" / "new" / "ok.csv").write_bytes(b"ok")
    r = call(client, "POST", "/sftp/scan", cfg)
    assert r.status_code == 200, r.text
    r = call(client, "POST", "/sftp/scan", dict(cfg, password="not-the-pw-xyz"))
    assert r.status_code == 502 and "not-the-pw-xyz" not in r.text


def test_timeout_on_silent_server(client, zone, settings):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted = []
    threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True).start()
    settings.sftp_connect_timeout = 0.5
    try:
        r = call(client, "POST", "/sftp/scan", dict(zone.cfg, port=listener.getsockname()[1]))
        assert r.status_code == 504, r.text
        assert "timed out" in r.json()["detail"] and "127.0.0.1" in r.json()["detail"]
        assert_no_secret(r, zone.cfg["private_key"])
    finally:
        listener.close()
        for conn, _ in accepted:
            conn.close()
