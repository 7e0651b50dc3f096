"""A big scan's downloads shared with a helper process (``sftp_download_processes``), on the real sshd."""

from __future__ import annotations

import asyncio

import asyncssh
import pytest

from fileregistry.sftp import download_worker, monitor

from .helpers import call
from .test_faults import assert_no_secret

N = 300


@pytest.fixture
def helpers(monkeypatch, settings):
    """Split from 10 files; the parent is slowed down (this process only) so the helper gets work."""
    monkeypatch.setattr(monitor, "SPLIT_MIN_FILES", 10)
    settings.sftp_download_concurrency = 2
    settings.sftp_download_processes = 2
    real = monitor.fetch_one

    async def slow(*args):
        await asyncio.sleep(0.02)
        return await real(*args)

    monkeypatch.setattr(monitor, "fetch_one", slow)
    made: list[download_worker.Helper] = []

    class Recorded(download_worker.Helper):
        def __init__(self, *args) -> None:
            super().__init__(*args)
            made.append(self)

    monkeypatch.setattr(monitor, "Helper", Recorded)
    return made


def _fill(zone, n: int = N) -> dict[str, bytes]:
    files = {f"f{i:04d}.csv": f"{i}".encode() * (i % 7 + 1) for i in range(n)}
    for name, data in files.items():
        zone.put(name, data)
    return files


def _partial_files(zone) -> list:
    d = zone.mirror / ".partial"
    return sorted(d.iterdir()) if d.exists() else []


def test_helper_process_downloads_part_of_a_big_scan(client, zone, helpers):
    files = _fill(zone)
    r = call(client, "POST", "/sftp/scan", zone.cfg)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["failed_files"] == []
    assert [f["path"] for f in body["new_files"]] == sorted(files)
    assert zone.mirror_tree() == {"new": b"<dir>", **{f"new/{k}": v for k, v in files.items()}}
    assert _partial_files(zone) == []
    [h] = helpers
    assert h.error is None and 0 < h.handled < N
    r = call(client, "GET", "/sftp/new-files", zone.cfg)
    assert len(r.json()["new_files"]) == N


def test_one_process_setting_starts_no_helper(client, zone, helpers, settings):
    settings.sftp_download_processes = 1
    _fill(zone, 40)
    r = call(client, "POST", "/sftp/scan", zone.cfg)
    assert r.status_code == 200 and len(r.json()["new_files"]) == 40
    assert helpers == []


def test_helper_checks_the_same_host_key(client, zone, helpers, monkeypatch):
    """The helper gets the host key the scan's connection verified; any other key is refused there."""
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    monkeypatch.setattr(monitor, "key_line", lambda _key: other)
    files = _fill(zone, 60)
    r = call(client, "POST", "/sftp/scan", zone.cfg)
    assert r.status_code == 200, r.text
    assert r.json()["failed_files"] == [] and len(r.json()["new_files"]) == 60
    assert zone.mirror_tree() == {"new": b"<dir>", **{f"new/{k}": v for k, v in files.items()}}
    [h] = helpers
    assert h.handled == 0 and "host key mismatch" in h.error
    assert_no_secret(r, zone.cfg["private_key"])


def test_helper_that_dies_fails_its_files_cleanly(client, zone, helpers, monkeypatch):
    """Files handed to a helper that died are failed and not registered; no temp file is left; the next
    scan fetches them."""

    class Dying(download_worker.Helper):
        def __init__(self, jobs, on_result, tmp_dir) -> None:
            def first_then_kill(i, err):
                on_result(i, err)
                if self._proc is not None and self._proc.returncode is None:
                    self._proc.kill()

            super().__init__(jobs, first_then_kill, tmp_dir)
            helpers.append(self)

    monkeypatch.setattr(monitor, "Helper", Dying)
    files = _fill(zone)
    r = call(client, "POST", "/sftp/scan", zone.cfg)
    assert r.status_code == 200, r.text
    body = r.json()
    failed = {f["path"]: f["error"] for f in body["failed_files"]}
    assert failed and set(failed.values()) == {"download worker process exited unexpectedly"}
    new = {f["path"] for f in body["new_files"]}
    assert new.isdisjoint(failed) and new | set(failed) == set(files)
    assert _partial_files(zone) == []
    registered = {f["path"] for f in call(client, "GET", "/sftp/new-files", zone.cfg).json()["new_files"]}
    assert registered == new

    monkeypatch.setattr(monitor, "Helper", download_worker.Helper)
    r = call(client, "POST", "/sftp/scan", zone.cfg)
    assert r.status_code == 200 and r.json()["failed_files"] == []
    assert {f["path"] for f in r.json()["new_files"]} == set(failed)
    assert zone.mirror_tree() == {"new": b"<dir>", **{f"new/{k}": v for k, v in files.items()}}


def test_scan_timeout_stops_the_helper(client, zone, helpers, settings, monkeypatch):
    real = download_worker.fetch_one

    async def slower(*args):
        await asyncio.sleep(0.5)
        return await real(*args)

    monkeypatch.setattr(monitor, "fetch_one", slower)
    settings.sftp_scan_timeout = 1.5
    # Enough bytes that the helper is still downloading when the scan times out, however fast the
    # machine (sparse on the server side: nothing to write up front).
    for i in range(150):
        with open(zone.path / "new" / f"f{i:04d}.csv", "wb") as f:
            f.truncate(16 << 20)
    r = call(client, "POST", "/sftp/scan", zone.cfg)
    assert r.status_code == 504 and "timed out" in r.json()["detail"], r.text
    assert _partial_files(zone) == []
    assert helpers and any(h._proc is not None for h in helpers)  # a helper was running...
    for h in helpers:
        assert h._proc is None or h._proc.returncode is not None  # ...and was killed, not left running
    assert not [p for p in (zone.mirror / "new").iterdir()]  # nothing registered, no copy kept
    assert call(client, "GET", "/sftp/new-files", zone.cfg).json()["new_files"] == []
