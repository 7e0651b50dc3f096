"""Every endpoint and the seed's whole workflow, over HTTP, against a real OpenSSH sshd."""

from __future__ import annotations

import re
import time

from .helpers import call


def test_connection_key(client, zone):
    r = call(client, "POST", "/sftp/connection-key", zone.cfg)
    assert r.status_code == 200, r.text
    assert r.json() == {"connection_key": f"sftp_connection_{zone.cfg['host']}_{zone.cfg['remote_path']}"}


def test_seed_workflow(client, zone):
    zone.put("file1.csv", b"a" * 1024, mtime=1698400800)
    zone.put("file2.csv", b"b" * 2048)
    (zone.path / "new" / "subdir").mkdir()
    (zone.path / "new" / "subdir" / "deep.csv").write_bytes(b"deep")

    r = call(client, "POST", "/sftp/scan", zone.cfg)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total_files"] == 2
    assert [f["path"] for f in body["new_files"]] == ["file1.csv", "file2.csv"]
    f1 = body["new_files"][0]
    assert f1 == {"path": "file1.csv", "size": 1024, "modified": "2023-10-27T10:00:00Z", "status": "new"}
    assert body["scan_timestamp"].endswith("Z") and body["scan_duration"] >= 0
    assert body["failed_files"] == [] and body["updated_files"] == []
    assert zone.mirror_tree() == {"new": b"<dir>", "new/file1.csv": b"a" * 1024, "new/file2.csv": b"b" * 2048}

    # A second scan downloads nothing again.
    (zone.mirror / "new" / "file1.csv").write_bytes(b"local marker")
    r = call(client, "POST", "/sftp/scan", zone.cfg)
    assert r.status_code == 200 and r.json()["new_files"] == [] and r.json()["total_files"] == 2
    assert (zone.mirror / "new" / "file1.csv").read_bytes() == b"local marker"
    (zone.mirror / "new" / "file1.csv").write_bytes(b"a" * 1024)

    r = call(client, "GET", "/sftp/new-files", zone.cfg)
    assert r.status_code == 200
    assert [f["path"] for f in r.json()["new_files"]] == ["file1.csv", "file2.csv"]

    r = call(client, "POST", "/sftp/mark-processing/file1.csv", zone.cfg)
    assert r.status_code == 200, r.text
    new_name = r.json()["new_filename"]
    assert re.fullmatch(r"file1_\d{14}\.csv", new_name)
    assert r.json() == {"message": "File file1.csv moved to processing.", "new_filename": new_name}
    assert not (zone.path / "new" / "file1.csv").exists()
    assert (zone.path / "processing" / new_name).read_bytes() == b"a" * 1024
    assert (zone.mirror / "processing" / new_name).read_bytes() == b"a" * 1024
    assert not (zone.mirror / "new" / "file1.csv").exists()

    r = call(client, "GET", "/sftp/status", zone.cfg)
    assert r.status_code == 200
    st = r.json()
    assert st["total_tracked_files"] == 2
    assert st["last_scan_time"].endswith("Z")
    assert set(st["file_registry"]) == {f"processing/{new_name}", "new/file2.csv"}
    assert st["file_registry"][f"processing/{new_name}"] == {
        "path": new_name, "size": 1024, "modified": "2023-10-27T10:00:00Z", "status": "processing"
    }

    r = call(client, "POST", f"/sftp/mark-completed/{new_name}", zone.cfg)
    assert r.status_code == 200, r.text
    assert r.json() == {"message": f"File {new_name} moved to completed."}
    assert (zone.path / "completed" / new_name).exists() and (zone.mirror / "completed" / new_name).exists()

    r = call(client, "POST", "/sftp/mark-processing/file2.csv", zone.cfg)
    name2 = r.json()["new_filename"]
    r = call(client, "POST", f"/sftp/mark-error/{name2}", zone.cfg)
    assert r.status_code == 200, r.text
    assert r.json() == {"message": f"File {name2} moved to error."}
    assert (zone.path / "error" / name2).exists() and (zone.mirror / "error" / name2).exists()

    st = call(client, "GET", "/sftp/status", zone.cfg).json()
    assert {k: v["status"] for k, v in st["file_registry"].items()} == {
        f"completed/{new_name}": "completed", f"error/{name2}": "error"
    }
    assert call(client, "GET", "/sftp/new-files", zone.cfg).json() == {"new_files": []}

    r = call(client, "DELETE", "/sftp/clear-registry", zone.cfg)
    assert r.status_code == 200 and r.json() == {"message": "Registry cleared"}
    st = call(client, "GET", "/sftp/status", zone.cfg).json()
    assert st == {"total_tracked_files": 0, "last_scan_time": None, "file_registry": {}}
    assert not zone.mirror.exists()
    # The server keeps its files.
    assert (zone.path / "completed" / new_name).exists()


def test_changed_new_file_is_downloaded_again(client, zone):
    zone.put("a.csv", b"one", mtime=1_700_000_000)
    assert call(client, "POST", "/sftp/scan", zone.cfg).json()["new_files"][0]["size"] == 3
    zone.put("a.csv", b"three", mtime=1_700_000_100)
    r = call(client, "POST", "/sftp/scan", zone.cfg).json()
    assert [f["path"] for f in r["new_files"]] == ["a.csv"] and r["updated_files"] == ["a.csv"]
    assert (zone.mirror / "new" / "a.csv").read_bytes() == b"three"
    st = call(client, "GET", "/sftp/status", zone.cfg).json()
    assert st["total_tracked_files"] == 1
    assert st["file_registry"]["new/a.csv"]["size"] == 5
    # Same size, different mtime is a change too.
    zone.put("a.csv", b"THREE", mtime=1_700_000_200)
    r = call(client, "POST", "/sftp/scan", zone.cfg).json()
    assert r["updated_files"] == ["a.csv"] and (zone.mirror / "new" / "a.csv").read_bytes() == b"THREE"


def test_new_file_gone_from_server_is_unregistered(client, zone):
    zone.put("a.csv", b"aa")
    zone.put("b.csv", b"bb")
    zone.put("c.csv", b"cc")
    call(client, "POST", "/sftp/scan", zone.cfg)
    claimed = call(client, "POST", "/sftp/mark-processing/c.csv", zone.cfg).json()["new_filename"]
    (zone.path / "new" / "a.csv").unlink()  # the partner takes a.csv back
    (zone.path / "processing" / claimed).unlink()  # a claimed file is never touched by a scan
    r = call(client, "POST", "/sftp/scan", zone.cfg).json()
    assert r["removed_files"] == ["a.csv"] and r["new_files"] == [] and r["total_files"] == 1
    st = call(client, "GET", "/sftp/status", zone.cfg).json()
    assert sorted(st["file_registry"]) == ["new/b.csv", f"processing/{claimed}"]
    assert not (zone.mirror / "new" / "a.csv").exists()
    assert (zone.mirror / "new" / "b.csv").read_bytes() == b"bb"
    assert (zone.mirror / "processing" / claimed).read_bytes() == b"cc"
    assert [f["path"] for f in call(client, "GET", "/sftp/new-files", zone.cfg).json()["new_files"]] == ["b.csv"]
    # Dropped again later: a new file like any other.
    zone.put("a.csv", b"again")
    r = call(client, "POST", "/sftp/scan", zone.cfg).json()
    assert [f["path"] for f in r["new_files"]] == ["a.csv"] and r["removed_files"] == []
    assert (zone.mirror / "new" / "a.csv").read_bytes() == b"again"


def test_lifecycle_dirs_created_on_first_use(client, zone):
    zone.put("x.txt")
    call(client, "POST", "/sftp/scan", zone.cfg)
    assert not (zone.path / "processing").exists()
    name = call(client, "POST", "/sftp/mark-processing/x.txt", zone.cfg).json()["new_filename"]
    assert (zone.path / "processing" / name).exists()
    assert call(client, "POST", f"/sftp/mark-error/{name}", zone.cfg).status_code == 200
    assert (zone.path / "error" / name).exists()


def test_same_name_dropped_again_after_processing(client, zone):
    zone.put("a.csv", b"v1")
    call(client, "POST", "/sftp/scan", zone.cfg)
    first = call(client, "POST", "/sftp/mark-processing/a.csv", zone.cfg).json()["new_filename"]
    zone.put("a.csv", b"v2")
    r = call(client, "POST", "/sftp/scan", zone.cfg).json()
    assert [f["path"] for f in r["new_files"]] == ["a.csv"]
    second = call(client, "POST", "/sftp/mark-processing/a.csv", zone.cfg)
    assert second.status_code == 200, second.text
    second = second.json()["new_filename"]
    assert second != first  # same second: collision got a distinct name
    assert (zone.path / "processing" / first).read_bytes() == b"v1"
    assert (zone.path / "processing" / second).read_bytes() == b"v2"


def test_report_double_dot_is_legal(client, zone):
    zone.put("report..csv", b"r")
    call(client, "POST", "/sftp/scan", zone.cfg)
    r = call(client, "POST", "/sftp/mark-processing/report..csv", zone.cfg)
    assert r.status_code == 200, r.text
    assert r.json()["new_filename"].startswith("report._")


def test_empty_file_and_larger_file(client, zone):
    zone.put("empty", b"")
    big = bytes(range(256)) * 4096 * 3  # 3 MiB: the parallel (large file) path
    zone.put("big.bin", big)
    r = call(client, "POST", "/sftp/scan", zone.cfg).json()
    assert {f["path"]: f["size"] for f in r["new_files"]} == {"empty": 0, "big.bin": len(big)}
    assert (zone.mirror / "new" / "empty").read_bytes() == b""
    assert (zone.mirror / "new" / "big.bin").read_bytes() == big


def test_many_files_scan(client, zone):
    for i in range(600):  # more than one READDIR (100 names) and more workers than one
        zone.put(f"f{i:04}.txt", f"{i}".encode())
    t = time.perf_counter()
    r = call(client, "POST", "/sftp/scan", zone.cfg)
    assert r.status_code == 200
    assert len(r.json()["new_files"]) == 600, time.perf_counter() - t
    assert len(list((zone.mirror / "new").iterdir())) == 600
    assert call(client, "POST", "/sftp/scan", zone.cfg).json()["new_files"] == []


def test_sessions_are_reused_only_with_the_same_credentials(client, zone, fake_sftp):
    pool = client.app.state.sftp_pool
    zone.put("a.csv")
    before = pool.reused
    for _ in range(3):
        assert call(client, "POST", "/sftp/scan", zone.cfg).status_code == 200
    assert pool.reused >= before + 2
    assert call(client, "POST", "/sftp/mark-processing/a.csv", zone.cfg).status_code == 200
    # Another password never rides on a pooled, already-authenticated connection.
    cfg = fake_sftp.config("/zone")
    assert call(client, "POST", "/sftp/scan", cfg).status_code == 200
    r = call(client, "POST", "/sftp/scan", dict(cfg, password="wrong-password-123"))
    assert r.status_code == 502 and "authentication failed" in r.json()["detail"]
    assert call(client, "POST", "/sftp/scan", cfg).status_code == 200
