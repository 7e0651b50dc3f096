"""Host keys, failed moves and downloads, collisions: nothing is overwritten or left half-done."""

from __future__ import annotations

import asyncio
import os
import re
from datetime import UTC, datetime, timedelta

import asyncssh
import pytest
from sqlalchemy import text

from fileregistry.db import create_nullpool_engine

from .helpers import call


def _sql(settings, stmt: str, **params):
    async def run():
        engine = create_nullpool_engine(settings.resolved_database_url)
        try:
            async with engine.begin() as conn:
                res = await conn.execute(text(stmt), params)
                return res.fetchall() if res.returns_rows else None
        finally:
            await engine.dispose()

    return asyncio.run(run())


async def database_gone(*_a, **_k):
    """Stands in for a registry call whose database connection was lost."""
    raise RuntimeError("connection to the database was lost")


def snapshot(client, zone):
    return (
        zone.remote_tree(),
        zone.mirror_tree(),
        call(client, "GET", "/sftp/status", zone.cfg).json()["file_registry"],
    )


# --------------------------------------------------------------------------- host keys


def test_explicit_host_key(client, zone):
    zone.put("a.csv")
    good = zone.sshd.host_pubkey_line
    fp = asyncssh.import_public_key(good).get_fingerprint("sha256")
    assert call(client, "POST", "/sftp/scan", dict(zone.cfg, host_key=good)).status_code == 200
    assert call(client, "POST", "/sftp/scan", dict(zone.cfg, host_key=fp)).status_code == 200

    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    other_fp = asyncssh.import_public_key(other).get_fingerprint("sha256")
    before = snapshot(client, zone)
    for hk, shown in ((other, other_fp), ("SHA256:" + "A" * 43, "SHA256:" + "A" * 43)):
        r = call(client, "POST", "/sftp/scan", dict(zone.cfg, host_key=hk))
        assert r.status_code == 502, r.text
        d = r.json()["detail"]
        assert "host key mismatch" in d and fp in d and shown in d and zone.sshd.host in d
    r = call(client, "POST", "/sftp/mark-processing/a.csv", dict(zone.cfg, host_key=other))
    assert r.status_code == 502
    assert snapshot(client, zone) == before

    r = call(client, "POST", "/sftp/scan", dict(zone.cfg, host_key="not a key"))
    assert r.status_code == 422 and "host_key" in r.json()["detail"]


def test_trust_on_first_use(client, zone, settings):
    zone.put("a.csv")
    assert call(client, "POST", "/sftp/scan", zone.cfg).status_code == 200
    rows = _sql(settings, "SELECT host, port, public_key, fingerprint FROM sftp_known_hosts")
    assert rows == [(zone.sshd.host, zone.sshd.port, zone.sshd.host_pubkey_line,
                     asyncssh.import_public_key(zone.sshd.host_pubkey_line).get_fingerprint("sha256"))]
    assert call(client, "POST", "/sftp/scan", zone.cfg).status_code == 200  # same key: fine

    # The server's key "changes": refused, and nothing happens.
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    _sql(settings, "UPDATE sftp_known_hosts SET public_key = :k", k=other)
    before = snapshot(client, zone)
    for method, path in (("POST", "/sftp/scan"), ("POST", "/sftp/mark-processing/a.csv")):
        r = call(client, method, path, zone.cfg)
        assert r.status_code == 502, r.text
        assert "host key changed" in r.json()["detail"] and "stored on first use" in r.json()["detail"]
    assert snapshot(client, zone) == before
    # An explicit host_key overrides the stored one.
    assert call(client, "POST", "/sftp/scan", dict(zone.cfg, host_key=zone.sshd.host_pubkey_line)).status_code == 200


def test_tofu_against_a_server_whose_key_changed(client, tmp_path):
    from .fakeserver import FakeSFTPServer

    root = tmp_path / "fake"
    (root / "z" / "new").mkdir(parents=True)
    first = FakeSFTPServer(root).start()
    cfg = first.config("/z")
    try:
        assert call(client, "POST", "/sftp/scan", cfg).status_code == 200
    finally:
        first.stop()
    second = FakeSFTPServer(root, port=first.port).start()
    try:
        r = call(client, "POST", "/sftp/scan", cfg)
        assert r.status_code == 502 and "host key changed" in r.json()["detail"]
        assert "fake-secret-pw" not in r.text
    finally:
        second.stop()


# --------------------------------------------------------------------------- failed moves


def test_failed_remote_rename_changes_nothing(client, zone):
    zone.put("a.csv", b"aaa")
    call(client, "POST", "/sftp/scan", zone.cfg)
    (zone.path / "processing").write_bytes(b"a FILE where the directory should be")
    before = snapshot(client, zone)
    r = call(client, "POST", "/sftp/mark-processing/a.csv", zone.cfg)
    assert r.status_code == 502, r.text
    assert "processing" in r.json()["detail"] and "not a directory" in r.json()["detail"]
    assert snapshot(client, zone) == before


def test_file_gone_from_server_changes_nothing(client, zone):
    zone.put("a.csv", b"aaa")
    call(client, "POST", "/sftp/scan", zone.cfg)
    (zone.path / "new" / "a.csv").unlink()
    before = snapshot(client, zone)
    r = call(client, "POST", "/sftp/mark-processing/a.csv", zone.cfg)
    assert r.status_code == 404, r.text
    assert "a.csv" in r.json()["detail"]
    assert snapshot(client, zone) == before


def test_failed_mirror_move_rolls_back_the_remote_rename(client, zone):
    zone.put("a.csv", b"aaa")
    call(client, "POST", "/sftp/scan", zone.cfg)
    (zone.mirror / "processing").write_bytes(b"blocks the mirror move")
    before = snapshot(client, zone)
    r = call(client, "POST", "/sftp/mark-processing/a.csv", zone.cfg)
    assert r.status_code == 500, r.text
    assert "mirror" in r.json()["detail"]
    after = snapshot(client, zone)
    assert after[0] == {**before[0], "processing": b"<dir>"}  # only the (empty) lifecycle dir was created
    assert after[1:] == before[1:]


def test_missing_mirror_copy_is_fetched_again(client, zone):
    zone.put("a.csv", b"aaa")
    call(client, "POST", "/sftp/scan", zone.cfg)
    (zone.mirror / "new" / "a.csv").unlink()
    r = call(client, "POST", "/sftp/mark-processing/a.csv", zone.cfg)
    assert r.status_code == 200, r.text
    assert (zone.mirror / "processing" / r.json()["new_filename"]).read_bytes() == b"aaa"


# --------------------------------------------------------------------------- collisions


def test_processing_collision_never_overwrites(client, zone):
    zone.put("a.csv", b"mine")
    call(client, "POST", "/sftp/scan", zone.cfg)
    now = datetime.now(UTC)
    squatters = {}
    for dt in range(0, 4):  # the names this call could pick in the next seconds
        stamp = (now + timedelta(seconds=dt)).strftime("%Y%m%d%H%M%S")
        squatters[f"a_{stamp}.csv"] = zone.put(f"a_{stamp}.csv", f"squatter {dt}".encode(), state="processing")
    r = call(client, "POST", "/sftp/mark-processing/a.csv", zone.cfg)
    assert r.status_code == 200, r.text
    name = r.json()["new_filename"]
    assert name not in squatters and re.fullmatch(r"a_\d{14}_1\.csv", name)
    for n, p in squatters.items():
        assert p.read_bytes().startswith(b"squatter"), n
    assert (zone.path / "processing" / name).read_bytes() == b"mine"


def test_completed_collision_gets_distinct_name(client, zone):
    zone.put("a.csv", b"mine")
    call(client, "POST", "/sftp/scan", zone.cfg)
    name = call(client, "POST", "/sftp/mark-processing/a.csv", zone.cfg).json()["new_filename"]
    zone.put(name, b"already completed", state="completed")
    r = call(client, "POST", f"/sftp/mark-completed/{name}", zone.cfg)
    assert r.status_code == 200, r.text
    stem, ext = name.rsplit(".", 1)
    assert r.json() == {"message": f"File {name} moved to completed.", "new_filename": f"{stem}_1.{ext}"}
    assert (zone.path / "completed" / name).read_bytes() == b"already completed"
    assert (zone.path / "completed" / f"{stem}_1.{ext}").read_bytes() == b"mine"
    st = call(client, "GET", "/sftp/status", zone.cfg).json()["file_registry"]
    assert list(st) == [f"completed/{stem}_1.{ext}"]


# --------------------------------------------------------------------------- failed downloads


def test_failed_downloads_leave_nothing_and_are_retried(client, fake_sftp, settings):
    new = fake_sftp.root / "zone" / "new"
    (new / "good.csv").write_bytes(b"good")
    (new / "shrink.csv").write_bytes(b"0123456789")
    (new / "broken.csv").write_bytes(b"x" * 100)
    (new / "broken-big.bin").write_bytes(b"y" * (3 * 1024 * 1024))  # fails midway in the parallel path
    from .fakeserver import _FaultySFTP

    _FaultySFTP.faults = True
    cfg = fake_sftp.config("/zone")
    r = call(client, "POST", "/sftp/scan", cfg)
    assert r.status_code == 200, r.text
    body = r.json()
    assert [f["path"] for f in body["new_files"]] == ["good.csv"]
    failed = {f["path"]: f["error"] for f in body["failed_files"]}
    assert set(failed) == {"shrink.csv", "broken.csv", "broken-big.bin"}
    assert "size changed" in failed["shrink.csv"]
    assert "simulated disk failure" in failed["broken.csv"]
    assert "simulated disk failure" in failed["broken-big.bin"]
    mirror = settings.resolved_mirror_dir
    files = sorted(p.relative_to(mirror).as_posix().split("/", 1)[1] for p in mirror.rglob("*") if p.is_file())
    assert files == ["new/good.csv"]  # no partial file anywhere, .partial included
    st = call(client, "GET", "/sftp/status", cfg).json()
    assert list(st["file_registry"]) == ["new/good.csv"]

    # Fixed on the server: the next scan retries them.
    (new / "shrink.csv").rename(new / "fine.csv")
    _FaultySFTP.faults = False
    try:
        r = call(client, "POST", "/sftp/scan", cfg).json()
    finally:
        _FaultySFTP.faults = True
    assert sorted(f["path"] for f in r["new_files"]) == ["broken-big.bin", "broken.csv", "fine.csv"]
    assert r["failed_files"] == []


def test_stalled_download_times_out(client, fake_sftp, settings):
    new = fake_sftp.root / "zone" / "new"
    (new / "stall.csv").write_bytes(b"never comes")
    (new / "ok.csv").write_bytes(b"ok")
    settings.sftp_download_timeout = 0.5
    settings.sftp_op_timeout = 0.5
    r = call(client, "POST", "/sftp/scan", fake_sftp.config("/zone"))
    assert r.status_code == 200, r.text
    # asyncssh's server answers one request at a time, so ok.csv may be stuck behind the stalled read.
    assert [f["path"] for f in r.json()["new_files"]] in (["ok.csv"], [])
    failed = {f["path"]: f["error"] for f in r.json()["failed_files"]}
    assert "stall.csv" in failed and "timed out" in failed["stall.csv"]
    mirror = settings.resolved_mirror_dir
    assert not [p for p in mirror.rglob("*") if p.is_file() and p.name != "ok.csv"]


def test_scan_timeout_is_504_and_recorded(client, fake_sftp, settings):
    (fake_sftp.root / "zone" / "new" / "stall.csv").write_bytes(b"never comes")
    settings.sftp_scan_timeout = 0.5
    cfg = fake_sftp.config("/zone")
    r = call(client, "POST", "/sftp/scan", cfg)
    assert r.status_code == 504 and "timed out" in r.json()["detail"], r.text
    assert not [p for p in settings.resolved_mirror_dir.rglob("*") if not p.is_dir()]  # no file, no temp
    rows = _sql(settings, "SELECT error, listed FROM sftp_scans")
    assert len(rows) == 1 and "timed out" in rows[0][0] and rows[0][1] == 1
    assert call(client, "GET", "/sftp/status", cfg).json()["last_scan_time"] is not None


def test_database_keeps_events_and_scan_history(client, zone, settings):
    zone.put("a.csv", b"aaa", mtime=1_700_000_000)
    zone.put("b.csv", b"bb")
    call(client, "POST", "/sftp/scan", zone.cfg)
    name = call(client, "POST", "/sftp/mark-processing/a.csv", zone.cfg).json()["new_filename"]
    call(client, "POST", f"/sftp/mark-completed/{name}", zone.cfg)
    rows = _sql(settings, "SELECT f.original_name, e.from_state, e.to_state, e.from_name, e.to_name "
                          "FROM sftp_file_events e JOIN sftp_files f ON f.id = e.file_id ORDER BY e.id")
    assert sorted(r for r in rows if r[0] == "b.csv") == [("b.csv", None, "new", None, "b.csv")]
    assert [r for r in rows if r[0] == "a.csv"] == [
        ("a.csv", None, "new", None, "a.csv"),
        ("a.csv", "new", "processing", "a.csv", name),
        ("a.csv", "processing", "completed", name, name),
    ]
    [f] = _sql(settings, "SELECT connection_key, state, name, original_name, size, first_seen, last_changed "
                         "FROM sftp_files WHERE original_name = 'a.csv'")
    assert f[:5] == (zone.key, "completed", name, "a.csv", 3) and f[5] is not None and f[6] is not None
    call(client, "POST", "/sftp/scan", zone.cfg)
    scans = _sql(settings, "SELECT listed, new_count, updated_count, failed_count, bytes_downloaded, error "
                           "FROM sftp_scans ORDER BY id")
    assert scans == [(2, 2, 0, 0, 5, None), (1, 0, 0, 0, 0, None)]
    # clear-registry removes this connection's rows, events and scans only.
    call(client, "DELETE", "/sftp/clear-registry", zone.cfg)
    assert _sql(settings, "SELECT count(*) FROM sftp_file_events")[0][0] == 0
    assert _sql(settings, "SELECT count(*) FROM sftp_scans")[0][0] == 0
    assert _sql(settings, "SELECT count(*) FROM sftp_known_hosts")[0][0] == 1


# --------------------------------------------------------------------------- scans cut off, clear-registry


def test_scan_cut_off_before_registering_leaves_no_untracked_mirror_copy(client, zone, settings, monkeypatch):
    from fileregistry.sftp import registry

    zone.put("a.csv", b"aaa", mtime=1_700_000_000)
    call(client, "POST", "/sftp/scan", zone.cfg)
    zone.put("a.csv", b"changed", mtime=1_700_000_100)  # tracked and changed: downloaded again
    zone.put("b.csv", b"bb")  # untracked: downloaded, then the registry write fails
    monkeypatch.setattr(registry, "register_new", database_gone)
    with pytest.raises(RuntimeError):  # the TestClient re-raises what the server answered with a 500
        call(client, "POST", "/sftp/scan", zone.cfg)
    assert sorted(zone.mirror_tree()) == ["new", "new/a.csv"]  # b.csv was never registered: no copy
    assert not [p for p in (zone.mirror / ".partial").rglob("*") if not p.is_dir()]
    st = call(client, "GET", "/sftp/status", zone.cfg).json()["file_registry"]
    assert list(st) == ["new/a.csv"] and st["new/a.csv"]["size"] == 3
    # The failure is in the scan history, named by its type only.
    errors = [r[0] for r in _sql(settings, "SELECT error FROM sftp_scans ORDER BY id")]
    assert errors == [None, "internal error: RuntimeError"]
    monkeypatch.undo()
    r = call(client, "POST", "/sftp/scan", zone.cfg).json()
    assert [f["path"] for f in r["new_files"]] == ["a.csv", "b.csv"] and r["updated_files"] == ["a.csv"]
    assert zone.mirror_tree() == {"new": b"<dir>", "new/a.csv": b"changed", "new/b.csv": b"bb"}


def test_scans_leave_no_temp_directories(client, zone):
    for i in range(5):
        zone.put(f"f{i}.csv", b"x" * i)
    call(client, "POST", "/sftp/scan", zone.cfg)
    assert sorted(p.name for p in (zone.mirror / ".partial").iterdir()) == []


def test_clear_registry_waits_for_a_scan_in_another_process(client, zone, settings):
    from fileregistry.db import session_factory
    from fileregistry.sftp.lease import try_acquire

    zone.put("a.csv", b"aaa")
    call(client, "POST", "/sftp/scan", zone.cfg)
    before = snapshot(client, zone)

    async def hold() -> bool:  # another process's scan holds the lease
        engine = create_nullpool_engine(settings.resolved_database_url)
        try:
            return await try_acquire(session_factory(engine), zone.key, "other-process", 60)
        finally:
            await engine.dispose()

    assert asyncio.run(hold())
    settings.scan_wait_timeout = 0.5
    r = call(client, "DELETE", "/sftp/clear-registry", zone.cfg)
    assert r.status_code == 409 and "already running" in r.json()["detail"], r.text
    assert snapshot(client, zone) == before
    _sql(settings, "DELETE FROM sftp_scan_leases")
    assert call(client, "DELETE", "/sftp/clear-registry", zone.cfg).status_code == 200
    assert call(client, "GET", "/sftp/status", zone.cfg).json()["file_registry"] == {}
    assert not zone.mirror.exists() and zone.remote_tree() == before[0]


def test_clear_registry_that_fails_keeps_mirror_and_registry(client, zone, settings, monkeypatch):
    from fileregistry.sftp import registry

    zone.put("a.csv", b"aaa")
    call(client, "POST", "/sftp/scan", zone.cfg)
    before = snapshot(client, zone)
    monkeypatch.setattr(registry, "clear", database_gone)
    with pytest.raises(RuntimeError):
        call(client, "DELETE", "/sftp/clear-registry", zone.cfg)
    monkeypatch.undo()
    assert snapshot(client, zone) == before
    assert [p.name for p in settings.resolved_mirror_dir.iterdir() if p.name.startswith(".cleared")] == []


# --------------------------------------------------------------------------- a RENAME whose answer is lost


def test_rename_done_but_its_answer_lost_finishes_the_move(client, fake_sftp, settings):
    settings.sftp_op_timeout = 0.5
    cfg = fake_sftp.config("/zone")
    (fake_sftp.root / "zone" / "new" / "lost-reply.csv").write_bytes(b"data")
    assert call(client, "POST", "/sftp/scan", cfg).status_code == 200
    r = call(client, "POST", "/sftp/mark-processing/lost-reply.csv", cfg)
    assert r.status_code == 200, r.text
    name = r.json()["new_filename"]
    assert (fake_sftp.root / "zone" / "processing" / name).read_bytes() == b"data"
    assert not (fake_sftp.root / "zone" / "new" / "lost-reply.csv").exists()
    st = call(client, "GET", "/sftp/status", cfg).json()["file_registry"]
    assert list(st) == [f"processing/{name}"]
    mirror = next(settings.resolved_mirror_dir.iterdir())
    assert (mirror / "processing" / name).read_bytes() == b"data" and not (mirror / "new" / "lost-reply.csv").exists()


def test_rename_not_done_and_unanswered_is_504_and_changes_nothing(client, fake_sftp, settings):
    settings.sftp_op_timeout = 0.5
    cfg = fake_sftp.config("/zone")
    (fake_sftp.root / "zone" / "new" / "hang-rename.csv").write_bytes(b"data")
    assert call(client, "POST", "/sftp/scan", cfg).status_code == 200
    before = call(client, "GET", "/sftp/status", cfg).json()["file_registry"]
    r = call(client, "POST", "/sftp/mark-processing/hang-rename.csv", cfg)
    assert r.status_code == 504 and "timed out" in r.json()["detail"], r.text
    assert (fake_sftp.root / "zone" / "new" / "hang-rename.csv").read_bytes() == b"data"
    assert not list((fake_sftp.root / "zone").glob("processing/*"))
    assert call(client, "GET", "/sftp/status", cfg).json()["file_registry"] == before
    mirror = next(settings.resolved_mirror_dir.iterdir())
    assert (mirror / "new" / "hang-rename.csv").read_bytes() == b"data"
    assert not list(mirror.glob("processing/*"))


def test_failed_redownload_of_a_changed_file_keeps_the_old_copy_and_row(client, fake_sftp, settings):
    from .fakeserver import _FaultySFTP

    new = fake_sftp.root / "zone" / "new"
    (new / "broken.csv").write_bytes(b"old")
    os.utime(new / "broken.csv", (1_700_000_000, 1_700_000_000))
    cfg = fake_sftp.config("/zone")
    _FaultySFTP.faults = False
    try:
        assert call(client, "POST", "/sftp/scan", cfg).json()["new_files"][0]["size"] == 3
    finally:
        _FaultySFTP.faults = True
    before = call(client, "GET", "/sftp/status", cfg).json()["file_registry"]
    (new / "broken.csv").write_bytes(b"new content")  # changed on the server; its download fails
    r = call(client, "POST", "/sftp/scan", cfg).json()
    assert r["new_files"] == [] and r["updated_files"] == [] and [f["path"] for f in r["failed_files"]] == ["broken.csv"]
    assert call(client, "GET", "/sftp/status", cfg).json()["file_registry"] == before
    mirror = next(settings.resolved_mirror_dir.iterdir())
    assert (mirror / "new" / "broken.csv").read_bytes() == b"old"


def test_registry_failure_after_both_moves_rolls_both_back(client, zone, monkeypatch):
    from fileregistry.sftp import registry

    zone.put("a.csv", b"aaa")
    call(client, "POST", "/sftp/scan", zone.cfg)
    before = snapshot(client, zone)
    monkeypatch.setattr(registry, "move", database_gone)
    with pytest.raises(RuntimeError):
        call(client, "POST", "/sftp/mark-processing/a.csv", zone.cfg)
    monkeypatch.undo()
    # Server, mirror and registry as they were (the lifecycle directory made on first use stays, empty).
    remote, mirror, reg = snapshot(client, zone)
    assert remote.pop("processing", None) in (None, b"<dir>") and mirror.pop("processing", None) in (None, b"<dir>")
    assert (remote, mirror, reg) == before
    assert call(client, "POST", "/sftp/mark-processing/a.csv", zone.cfg).status_code == 200
