"""``fileregistry vfs-from-dir`` / ``vfs-from-sftp`` as subprocesses; their output uploaded and accepted."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import orjson
import pytest

from tests.vfs.conftest import Vfs

T1 = 1_600_000_000  # 2020-09-13 12:26:40 UTC
T2 = 1_500_000_000  # 2017-07-14 02:40:00 UTC


def make_tree(root: Path) -> dict[str, dict]:
    """Nested dirs, unicode names, an empty dir, a symlink; returns the expected lines by full path."""
    (root / "var" / "log").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "données été").mkdir()
    (root / "var" / "log" / "mail.log").write_bytes(b"x" * 28776)
    (root / "données été" / "résumé 📄.txt").write_text("ü")
    (root / "top.txt").write_bytes(b"")
    (root / "var" / "log" / "mail.log").chmod(0o640)
    (root / "empty").chmod(0o700)
    os.symlink("var/log", root / "link")
    for p in [root / "var" / "log" / "mail.log", root / "données été" / "résumé 📄.txt", root / "top.txt",
              root / "var" / "log", root / "var", root / "empty", root / "données été"]:
        os.utime(p, (T2, T1))
    user = _user()
    group = _group()

    def d(path, name, mode=755):
        return {"path": path, "name": name, "is_directory": True, "size_in_bytes": 0,
                "ts_last_modified": "2020-09-13 12:26:40", "ts_last_accessed": "2017-07-14 02:40:00",
                "owner": user, "group": group, "permission_bits": mode}

    def f(path, name, size, mode=644):
        return {**d(path, name, mode), "is_directory": False, "size_in_bytes": size}

    return {
        "/données été": d("/", "données été"),
        "/empty": d("/", "empty", 700),
        "/top.txt": f("/", "top.txt", 0),
        "/var": d("/", "var"),
        "/données été/résumé 📄.txt": f("/données été/", "résumé 📄.txt", 2),
        "/var/log": d("/var/", "log"),
        "/var/log/mail.log": f("/var/log/", "mail.log", 28776, 640),
    }


def _user() -> str:
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name


def _group() -> str:
    import grp

    return grp.getgrgid(os.getegid()).gr_name


def lines_of(data: bytes) -> list[dict]:
    return [orjson.loads(line) for line in data.splitlines()]


def by_path(lines: list[dict]) -> dict[str, dict]:
    return {line["path"].rstrip("/") + "/" + line["name"]: line for line in lines}


def stable(lines):
    """Without directories' access times: reading a directory updates its atime (relatime)."""
    def strip(line: dict) -> dict:
        return {k: v for k, v in line.items() if not (k == "ts_last_accessed" and line["is_directory"])}

    if isinstance(lines, dict):
        return {k: strip(v) for k, v in lines.items()}
    return [strip(line) for line in lines]


def test_vfs_from_dir_writes_the_upload_format_and_is_accepted(cli, client, tmp_path):
    root = tmp_path / "tree"
    root.mkdir()
    expected = make_tree(root)
    out = tmp_path / "tree.jsonl"
    p = cli("vfs-from-dir", str(root), "-o", str(out))
    assert p.stdout == ""
    assert p.stderr.strip() == f"wrote 4 directories and 4 files to {out}"
    data = out.read_bytes()
    lines = lines_of(data)
    got = by_path(lines)
    link = got.pop("/link")
    assert link["is_directory"] is False and link["permission_bits"] == 777  # listed, not followed
    assert stable(got) == stable(expected)
    # deterministic: each directory's entries together, by name, depth first; stdout = the file
    assert [line["path"] for line in lines] == ["/"] * 5 + ["/données été/", "/var/", "/var/log/"]
    assert [line["name"] for line in lines][:5] == ["données été", "empty", "link", "top.txt", "var"]
    assert stable(lines_of(cli("vfs-from-dir", str(root)).stdout.encode())) == stable(lines)
    assert not list(tmp_path.glob(".tree.jsonl.*"))  # the temp file was renamed into place

    vfs = Vfs(client)
    fs_id = vfs.create("local-tree")
    job = vfs.run(fs_id, data)
    assert job["status"] == "successful", job
    c = job["counts"]
    assert (c["received"], c["added"], c["implied_directories"], c["errors"], c["warnings"]) == (8, 8, 0, 0, 0)
    tree = {full for _id, full, _d, _i in vfs.tree(fs_id)}
    assert "/données été/résumé 📄.txt" in {"/" + t.lstrip("/") for t in tree}
    # the server's export of it is the same tree (re-uploading it changes nothing)
    again = vfs.run(fs_id, vfs.export(fs_id))
    assert (again["counts"]["added"], again["counts"]["updated"], again["counts"]["removed"]) == (0, 0, 0)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # no database involved
def test_vfs_from_dir_follow_symlinks(cli, tmp_path):
    root = tmp_path / "tree"
    root.mkdir()
    make_tree(root)
    os.symlink(".", root / "var" / "loop")  # a loop: reported, not followed forever
    p = cli("vfs-from-dir", str(root), "--follow-symlinks", ok=False)
    assert p.returncode == 1
    got = by_path(lines_of(p.stdout.encode()))
    assert got["/link"]["is_directory"] is True and got["/link/mail.log"]["size_in_bytes"] == 28776
    assert got["/var/loop"]["is_directory"] is True and "/var/loop/log" not in got
    assert re.search(r"^warning: not descending into '.*/var/loop': a symlink loop$", p.stderr, re.M)
    assert p.stderr.strip().splitlines()[-1].startswith("error: 1 entry could not be read")


def test_vfs_from_dir_reports_problems_and_goes_on(cli, client, tmp_path, request):
    root = tmp_path / "tree"
    root.mkdir()
    make_tree(root)
    (root / "empty").chmod(0o755)
    os.mkdir(os.path.join(os.fsencode(root), b"latin1-\xe9"))  # not UTF-8: skipped, reported
    p = cli("vfs-from-dir", str(root), ok=False)
    assert p.returncode == 1
    assert f"warning: skipped {os.path.join(os.fsencode(root), b'latin1-' + bytes([0xE9]))!r}: the name is not UTF-8" \
        in p.stderr
    assert p.stderr.strip().splitlines()[-1] == (
        "error: 1 entry could not be read (see the warnings above); the output lacks them")
    good = lines_of(p.stdout.encode())
    assert len(good) == 8
    job = Vfs(client).run(Vfs(client).create("partial"), p.stdout.encode())
    assert job["status"] == "successful" and job["counts"]["added"] == 8, job

    # An unreadable directory. Root reads everything, so the CLI runs without the two capabilities
    # that bypass file permissions (setpriv drops them from its bounding set).
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("an unreadable directory needs root and setpriv to be tested here")
    secret = root / "var" / "private"
    secret.mkdir()
    (secret / "hidden.txt").write_text("h")
    secret.chmod(0o000)
    request.addfinalizer(lambda: secret.chmod(0o700))
    shutil.rmtree(os.path.join(os.fsencode(root), b"latin1-\xe9"))
    proc = subprocess.run(["setpriv", "--bounding-set=-dac_override,-dac_read_search",
                           *cli.argv("vfs-from-dir", str(root))],
                          capture_output=True, text=True, env=cli.env, cwd=cli.cwd, timeout=120)
    cli.check_output(proc.stdout + proc.stderr)
    assert proc.returncode == 1, proc.stderr
    assert f"warning: cannot read directory '{secret}': Permission denied" in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: 1 entry could not be read")
    got = by_path(lines_of(proc.stdout.encode()))
    assert "/var/private" in got and "/var/private/hidden.txt" not in got and "/var/log/mail.log" in got


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # no database involved
def test_vfs_from_dir_errors_are_one_line(cli, tmp_path):
    assert cli.fails("vfs-from-dir", str(tmp_path / "nope")) == f"error: '{tmp_path / 'nope'}' does not exist"
    (tmp_path / "file").write_text("x")
    assert cli.fails("vfs-from-dir", str(tmp_path / "file")) == f"error: '{tmp_path / 'file'}' is not a directory"
    assert cli.fails("vfs-from-dir", str(tmp_path), "-o", str(tmp_path / "no" / "such" / "out.jsonl")).startswith(
        "error: cannot write")


@pytest.mark.sshd
def test_vfs_from_sftp_matches_the_local_walk_and_is_accepted(cli, client, zone, sshd, tmp_path):
    """The sshd serves a local directory, so the SFTP walk must describe exactly what vfs-from-dir does."""
    expected = make_tree(zone.path / "tree")
    zone.put("waiting.csv", b"1,2\n", mtime=T1)
    cli("source", "add", "remote", "--host", sshd.host, "--port", str(sshd.port), "--username", sshd.username,
        "--key-file", str(sshd.user_key_path), "--remote-path", str(zone.path))

    out = tmp_path / "remote.jsonl"
    p = cli("vfs-from-sftp", "remote", "-o", str(out))
    assert p.stderr.strip() == f"wrote 6 directories and 5 files to {out}"
    remote = out.read_bytes()
    local = cli("vfs-from-dir", str(zone.path)).stdout.encode()

    assert stable(lines_of(remote)) == stable(lines_of(local))
    got = by_path(lines_of(remote))
    assert got["/new/waiting.csv"]["size_in_bytes"] == 4 and got["/new/waiting.csv"]["owner"] == _user()
    assert got["/tree/link"]["is_directory"] is False  # symlinks listed, not followed
    assert stable({k.removeprefix("/tree"): v for k, v in got.items() if k.startswith("/tree/")
                   and k != "/tree/link"}) == stable({k: {**v, "path": "/tree" + v["path"]}
                                                      for k, v in expected.items()})

    # --path: a sub directory (relative to the remote path) becomes the root; to stdout
    sub = cli("vfs-from-sftp", "remote", "--path", "tree/var")
    assert [(x["path"], x["name"]) for x in lines_of(sub.stdout.encode())] == [("/", "log"), ("/log/", "mail.log")]
    assert cli.fails("vfs-from-sftp", "remote", "--path", "nope") == (
        f"error: SFTP server {sshd.host}:{sshd.port}: '{zone.path / 'nope'}' does not exist")
    assert cli.fails("vfs-from-sftp", "remote", "--path", "tree/top.txt") == (
        f"error: SFTP server {sshd.host}:{sshd.port}: '{zone.path / 'tree' / 'top.txt'}' is not a directory")

    # uploaded through the CLI's own upload (the server's job code), accepted with the right counts
    fs_line = cli("fs", "create", "sftp-tree").stdout
    fs_id = re.search(r"id (\d+)", fs_line).group(1)
    up = cli("fs", "upload", fs_id, str(out))
    assert re.search(r"job \d+: successful: Uploaded 11 directories and files \(11 added, 0 updated, "
                     r"0 unchanged, 0 removed, 0 implied directories\)", up.stdout), up.stdout
    vfs = Vfs(client)
    assert len(vfs.tree(int(fs_id))) == 11


@pytest.mark.sshd
def test_vfs_from_sftp_skips_unreadable_dirs(cli, zone, sshd, request):
    """A remote directory the SFTP user cannot list is reported; the rest is written (exit 1)."""
    if not sshd.password_user:
        pytest.skip("needs the password user (root) to have a directory it cannot read")
    from fileregistry.testing.sshd import ensure_password_user

    ensure_password_user(sshd.password)
    cli.secrets.append(sshd.password)
    base = Path(tempfile.mkdtemp(prefix="fr-cli-sftp-"))
    request.addfinalizer(lambda: shutil.rmtree(base, ignore_errors=True))
    base.chmod(0o755)
    (base / "open").mkdir()
    (base / "open" / "a.txt").write_text("a")
    (base / "closed").mkdir(mode=0o700)
    (base / "closed" / "b.txt").write_text("b")
    (base / "closed").chmod(0o700)
    with open(os.path.join(os.fsencode(base), b"open", b"latin1-\xe9.txt"), "wb") as f:  # not UTF-8: skipped
        f.write(b"l")
    cli("source", "add", "pw", "--host", sshd.host, "--port", str(sshd.port), "--username", sshd.password_user,
        "--remote-path", str(base), "--password-stdin", stdin=sshd.password)
    p = cli("vfs-from-sftp", "pw", ok=False)
    assert p.returncode == 1, p.stderr
    assert f"warning: SFTP server {sshd.host}:{sshd.port}: listing '{base / 'closed'}': permission denied" in p.stderr
    assert f"warning: SFTP server {sshd.host}:{sshd.port}: skipped b'latin1-\\xe9.txt' in '{base / 'open'}': not a " \
        "UTF-8 file name" in p.stderr
    assert p.stderr.strip().splitlines()[-1].startswith("error: 2 entries could not be read")
    got = by_path(lines_of(p.stdout.encode()))
    assert set(got) == {"/closed", "/open", "/open/a.txt"}
    assert got["/closed"]["owner"] == "root" and got["/open/a.txt"]["size_in_bytes"] == 1
