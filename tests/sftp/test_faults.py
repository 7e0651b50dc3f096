"""Bad input and faults: each gets the right status and message, and changes nothing."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import threading
from pathlib import Path

import asyncssh
import pytest

from fileregistry.errors import BadRequest
from fileregistry.sftp.mirror import Mirror, encode_key
from fileregistry.testing.sshd import ensure_password_user, free_port

from .helpers import call


def snapshot(client, zone):
    return (
        zone.remote_tree(),
        zone.mirror_tree(),
        call(client, "GET", "/sftp/status", zone.cfg).json()["file_registry"],
    )


def full_snapshot(client, zone, *cfgs):
    """Server tree, the WHOLE mirror root, and the registry of the zone and of each other config."""
    return (
        zone.remote_tree(),
        tree(zone.mirror_root),
        [call(client, "GET", "/sftp/status", c).json()["file_registry"] for c in (zone.cfg, *cfgs)],
    )


def tree(root: Path, skip=lambda p: False) -> dict[str, bytes]:
    if not root.exists():
        return {}
    return {p.relative_to(root).as_posix(): (p.read_bytes() if p.is_file() and not p.is_symlink() else b"<dir>")
            for p in sorted(root.rglob("*")) if not skip(p)}


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


def _outside_mirror(tmp_path: Path, root: Path):
    """Everything under the test's tmp dir but outside the mirror root (the SQLite database excepted)."""
    base = tmp_path.resolve()
    return tree(base, skip=lambda p: p == root or root in p.parents or p.name.startswith("fileregistry.db"))


ESCAPING_REMOTE_PATHS = {
    "leading-dotdots": lambda z: f"/../..{z.path}",
    "dotdot-segments": lambda z: f"{z.sshd.root}/../{z.sshd.root.name}/{z.path.name}/../{z.path.name}",
    "many-dotdots": lambda z: f"{z.path}/{'../' * 12}{str(z.path).lstrip('/')}",
}


@pytest.mark.parametrize("form", list(ESCAPING_REMOTE_PATHS))
def test_remote_path_cannot_escape_the_mirror(client, zone, settings, tmp_path, form):
    root = settings.resolved_mirror_dir
    # Canaries where a naive <mirror root>/<remote_path> join would land.
    for d in ("etc", "new", "processing", "completed", tmp_path.name):
        (tmp_path / d).mkdir(exist_ok=True)
        (tmp_path / d / "canary").write_bytes(b"canary")
    outside_before = _outside_mirror(tmp_path, root)
    assert "etc/canary" in outside_before

    escaping = ESCAPING_REMOTE_PATHS[form](zone)
    assert "/../" in escaping
    zone.put("a.csv", b"x")
    cfg = dict(zone.cfg, remote_path=escaping)
    r = call(client, "POST", "/sftp/scan", cfg)
    assert r.status_code == 200, r.text
    assert [f["path"] for f in r.json()["new_files"]] == ["a.csv"]
    r = call(client, "POST", "/sftp/mark-processing/a.csv", cfg)
    assert r.status_code == 200, r.text
    name = r.json()["new_filename"]
    assert call(client, "POST", f"/sftp/mark-completed/{name}", cfg).status_code == 200

    # Everything written is in ONE directory under the mirror root (the remote_path percent-encoded)...
    [conn_dir] = list(root.iterdir())
    assert "%2F" in conn_dir.name and ".." in conn_dir.name and "/" not in conn_dir.name
    files = [p.relative_to(conn_dir).as_posix() for p in conn_dir.rglob("*")
             if p.is_file() and ".partial" not in p.parts]
    assert files == [f"completed/{name}"]
    assert zone.remote_tree()[f"completed/{name}"] == b"x"
    # ... and nothing outside it was written, changed or deleted.
    assert _outside_mirror(tmp_path, root) == outside_before

    # A remote_path naming a real directory outside the landing zones: nothing written anywhere either.
    etc = dict(zone.cfg, remote_path="/../../etc")
    r = call(client, "POST", "/sftp/scan", etc)
    assert r.status_code == 404, r.text
    assert call(client, "POST", "/sftp/mark-processing/passwd", etc).status_code == 404
    r = call(client, "DELETE", "/sftp/clear-registry", etc)
    assert r.status_code == 200
    assert list(root.iterdir()) == [conn_dir]
    assert [p.relative_to(conn_dir).as_posix() for p in conn_dir.rglob("*")
            if p.is_file() and ".partial" not in p.parts] == [f"completed/{name}"]
    assert list(call(client, "GET", "/sftp/status", cfg).json()["file_registry"]) == [f"completed/{name}"]
    assert _outside_mirror(tmp_path, root) == outside_before


def test_mirror_refuses_symlinks_out_of_the_mirror(tmp_path):
    """The guard itself (Mirror._inside): a connection dir, a state dir or the temp dir symlinked out of
    the mirror root is refused, whatever the method."""
    root = tmp_path / "mirror"
    root.mkdir()
    out = tmp_path / "elsewhere"
    out.mkdir()
    m = Mirror(root, "sftp_connection_h_/zone")
    m.base.mkdir()
    for state in ("new", "processing"):
        (m.base / state).symlink_to(out, target_is_directory=True)
    (m.base / "completed").mkdir()
    (m.base / "completed" / "x.csv").symlink_to(out / "x.csv")
    (m.base / ".partial").symlink_to(out, target_is_directory=True)
    refused = [
        lambda: m.state_dir("new"),
        lambda: m.ensure_state_dir("processing"),
        lambda: m.path("new", "a.csv"),
        lambda: m.exists("processing", "a.csv"),
        lambda: m.path("completed", "x.csv"),  # a file symlinked out
        lambda: m.move("completed", "x.csv", "error", "x.csv"),
        m.temp_dir,
    ]
    for fn in refused:
        with pytest.raises(BadRequest, match="leave the mirror"):
            fn()
    (root / encode_key("sftp_connection_h_/other")).symlink_to(out, target_is_directory=True)
    with pytest.raises(BadRequest, match="leave the mirror"):
        Mirror(root, "sftp_connection_h_/other")
    assert list(out.iterdir()) == []
    # A plain state dir still works.
    assert m.ensure_state_dir("error") == (m.base / "error").resolve()


@pytest.mark.parametrize("planted", ["new", ".partial", "connection-dir"])
def test_scan_refuses_a_mirror_dir_symlinked_outside(client, zone, tmp_path, planted):
    out = tmp_path / "elsewhere"
    out.mkdir()
    zone.mirror_root.mkdir(parents=True, exist_ok=True)
    if planted == "connection-dir":
        zone.mirror.symlink_to(out, target_is_directory=True)
    else:
        zone.mirror.mkdir()
        (zone.mirror / planted).symlink_to(out, target_is_directory=True)
    zone.put("a.csv", b"aaa")
    before = full_snapshot(client, zone)
    r = call(client, "POST", "/sftp/scan", zone.cfg)
    assert r.status_code == 400 and "leave the mirror directory" in r.json()["detail"], r.text
    assert list(out.iterdir()) == []
    after = full_snapshot(client, zone)
    if planted == ".partial":  # the (empty) new/ dir is made before the temp dir is asked for: no file
        after[1].pop(f"{zone.mirror.name}/new")
    assert after == before
    assert call(client, "GET", "/sftp/status", zone.cfg).json()["total_tracked_files"] == 0


@pytest.mark.parametrize("planted", ["processing", "connection-dir"])
def test_mark_processing_refuses_a_mirror_dir_symlinked_outside(client, scanned, tmp_path, planted):
    z = scanned
    out = tmp_path / "elsewhere"
    out.mkdir()
    if planted == "connection-dir":  # the real mirror set aside, a symlink out in its place
        z.mirror.rename(tmp_path / "aside")
        z.mirror.symlink_to(out, target_is_directory=True)
    else:
        (z.mirror / "processing").symlink_to(out, target_is_directory=True)
    before = full_snapshot(client, z)
    r = call(client, "POST", "/sftp/mark-processing/a.csv", z.cfg)
    assert r.status_code == 400 and "leave the mirror directory" in r.json()["detail"], r.text
    assert list(out.iterdir()) == []
    assert full_snapshot(client, z) == before
    assert z.remote_tree()["new/a.csv"] == b"aaa"
    assert "new/a.csv" in before[2][0]


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
    assert r.status_code == 422 and r.json()["detail"] == "key_path must name a key file inside the key directory"
    r = client.request("POST", "/sftp/scan", content=b"{not json")
    assert r.status_code == 422


@pytest.mark.parametrize(
    "kind", [("rsa", "2048", "PEM"), ("rsa", "2048", None), ("ecdsa", "256", "PEM"), ("ecdsa", "384", None),
             ("ed25519", None, None)]
)
def test_private_key_formats(client, zone, key_dir, kind):
    algo, bits, fmt = kind
    path = key_dir / f"k_{algo}"
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
        r = call(client, "POST", "/sftp/scan", dict(zone.cfg, private_key=None, key_path=path.name))
        assert r.status_code == 200, r.text
        # Escaped newlines (a key pasted into a JSON config as one line) work too.
        r = call(client, "POST", "/sftp/scan", dict(zone.cfg, private_key=text.replace("\n", "\\n")))
        assert r.status_code == 200, r.text
    finally:
        auth.write_text(original)


# --------------------------------------------------------------------------- connection failures


@pytest.fixture
def silent_port():
    """A TCP port that accepts connections and never says a word (an SSH handshake there times out)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                accepted.append(listener.accept()[0])

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()
        for conn in accepted:
            conn.close()


def scan_fault(client, zone, cfg):
    """Scan with a failing ``cfg`` over a zone with a file in new/: nothing may change, anywhere."""
    zone.put("a.csv", b"aaa")
    before = full_snapshot(client, zone, cfg)
    r = call(client, "POST", "/sftp/scan", cfg)
    assert full_snapshot(client, zone, cfg) == before
    assert zone.remote_tree() == {"new": b"<dir>", "new/a.csv": b"aaa"} and tree(zone.mirror_root) == {}
    return r


def test_connection_refused(client, zone):
    cfg = dict(zone.cfg, port=free_port())
    r = scan_fault(client, zone, cfg)
    assert r.status_code == 502 and "refused" in r.json()["detail"] and "127.0.0.1" in r.json()["detail"]
    assert_no_secret(r, cfg["private_key"])


def test_unknown_host(client, zone):
    cfg = dict(zone.cfg, host="nonexistent.invalid", password="hunter2-secret")
    r = scan_fault(client, zone, cfg)
    assert r.status_code == 502, r.text
    assert "unknown host" in r.json()["detail"] and "nonexistent.invalid" in r.json()["detail"]
    assert_no_secret(r, "hunter2-secret", cfg["private_key"])


def test_wrong_key_is_auth_failure(client, zone):
    other = asyncssh.generate_private_key("ssh-ed25519").export_private_key().decode()
    r = scan_fault(client, zone, dict(zone.cfg, private_key=other))
    assert r.status_code == 502 and "authentication failed" in r.json()["detail"]
    assert zone.sshd.host in r.json()["detail"]
    assert_no_secret(r, other)


def test_unauthorised_key_file_is_auth_failure(client, zone, key_dir):
    other = asyncssh.generate_private_key("ssh-ed25519").export_private_key().decode()
    (key_dir / "other.key").write_text(other)
    r = scan_fault(client, zone, dict(zone.cfg, private_key=None, key_path="other.key"))
    assert r.status_code == 502 and "authentication failed" in r.json()["detail"], r.text
    assert zone.sshd.host in r.json()["detail"]
    assert_no_secret(r, other)


MARK_FAULTS = {
    # fault: (status, what the message says)
    "refused": (502, "refused"),
    "wrong-private-key": (502, "authentication failed"),
    "unauthorised-key-file": (502, "authentication failed"),
    "timeout": (504, "timed out"),
}


@pytest.mark.parametrize("fault", list(MARK_FAULTS))
def test_connection_failure_on_mark_processing_changes_nothing(client, scanned, key_dir, settings, silent_port,
                                                               fault):
    z = scanned
    other = asyncssh.generate_private_key("ssh-ed25519").export_private_key().decode()
    if fault == "refused":
        cfg = dict(z.cfg, port=free_port())
    elif fault == "wrong-private-key":
        cfg = dict(z.cfg, private_key=other)
    elif fault == "unauthorised-key-file":
        (key_dir / "other.key").write_text(other)
        cfg = dict(z.cfg, private_key=None, key_path="other.key")
    else:
        settings.sftp_connect_timeout = 0.5
        cfg = dict(z.cfg, port=silent_port)
    status, why = MARK_FAULTS[fault]
    before = full_snapshot(client, z)
    assert "new/a.csv" in before[2][0] and before[0]["new/a.csv"] == b"aaa"
    assert (z.mirror / "new" / "a.csv").read_bytes() == b"aaa"
    r = call(client, "POST", "/sftp/mark-processing/a.csv", cfg)
    assert r.status_code == status, r.text
    assert why in r.json()["detail"] and z.sshd.host in r.json()["detail"]
    assert_no_secret(r, other, z.cfg["private_key"])
    assert full_snapshot(client, z) == before
    # Still in new/ on the server, in the mirror and in the registry; the good config still works.
    assert call(client, "POST", "/sftp/mark-processing/a.csv", z.cfg).status_code == 200


def test_unknown_host_on_mark_processing_changes_nothing(client, scanned):
    # The host is part of the connection key: another host's registry does not track the file, so
    # the answer is a 404 before any connection is tried.
    cfg = dict(scanned.cfg, host="nonexistent.invalid")
    before = full_snapshot(client, scanned, cfg)
    r = call(client, "POST", "/sftp/mark-processing/a.csv", cfg)
    assert r.status_code == 404, r.text
    assert full_snapshot(client, scanned, cfg) == before


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


def test_timeout_on_silent_server(client, zone, settings, silent_port):
    settings.sftp_connect_timeout = 0.5
    r = scan_fault(client, zone, dict(zone.cfg, port=silent_port))
    assert r.status_code == 504, r.text
    assert "timed out" in r.json()["detail"] and "127.0.0.1" in r.json()["detail"]
    assert_no_secret(r, zone.cfg["private_key"])
