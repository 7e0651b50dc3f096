"""Scans of one connection never overlap: a requested scan waits for a running one, then 409."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from sqlalchemy import delete

from fileregistry.db import unit_of_work, utcnow
from fileregistry.sources.models import ScanLease
from tests.sftp.helpers import call


def _hold(app, key: str, seconds: float):
    async def go():
        async with unit_of_work(app.state.sessions) as s:
            now = utcnow()
            s.add(ScanLease(connection_key=key, owner="another-process", acquired_at=now,
                            expires_at=now + timedelta(seconds=seconds)))
    return go


def _free(app, key: str):
    async def go():
        async with unit_of_work(app.state.sessions) as s:
            await s.execute(delete(ScanLease).where(ScanLease.connection_key == key))
    return go


def test_scan_during_a_running_scan_waits_then_gets_409(client, app, zone, settings):
    zone.put("f.csv")
    settings.scan_wait_timeout = 0.6
    client.portal.call(_hold(app, zone.key, 60))
    t0 = time.monotonic()
    r = call(client, "POST", "/sftp/scan", zone.cfg)
    assert r.status_code == 409, r.text
    assert r.json()["detail"] == f"a scan of {zone.key} is already running; retry when it has finished"
    assert time.monotonic() - t0 >= 0.5  # it waited first
    assert zone.mirror_tree() == {}  # nothing downloaded, nothing registered
    assert call(client, "GET", "/sftp/new-files", zone.cfg).json()["new_files"] == []


def test_scan_waits_for_the_running_scan_to_finish(client, app, zone, settings):
    zone.put("f.csv")
    settings.scan_wait_timeout = 10
    client.portal.call(_hold(app, zone.key, 60))
    threading.Timer(0.5, lambda: client.portal.call(_free(app, zone.key))).start()
    r = call(client, "POST", "/sftp/scan", zone.cfg)
    assert r.status_code == 200 and [f["path"] for f in r.json()["new_files"]] == ["f.csv"]


def test_a_crashed_holders_lease_expires(client, app, zone, settings):
    zone.put("f.csv")
    settings.scan_wait_timeout = 0
    client.portal.call(_hold(app, zone.key, -1))  # expired: its holder stopped renewing
    r = call(client, "POST", "/sftp/scan", zone.cfg)
    assert r.status_code == 200, r.text


def test_the_lease_is_freed_after_a_scan_and_after_a_failed_one(client, app, zone, settings):
    settings.scan_wait_timeout = 0
    assert call(client, "POST", "/sftp/scan", zone.cfg).status_code == 200
    assert call(client, "POST", "/sftp/scan", zone.cfg).status_code == 200
    bad = {**zone.cfg, "remote_path": zone.cfg["remote_path"] + "/missing"}
    assert call(client, "POST", "/sftp/scan", bad).status_code == 404
    assert call(client, "POST", "/sftp/scan", bad).status_code == 404  # not 409


def test_concurrent_requests_never_overlap(client, app, zone, settings):
    for i in range(20):
        zone.put(f"f{i}.csv", b"x" * 1000)
    results: list[int] = []

    def scan():
        results.append(call(client, "POST", "/sftp/scan", zone.cfg).json()["total_files"])

    threads = [threading.Thread(target=scan) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [20] * 4
    # Every file was downloaded by exactly one of them, and the recorded scans ran one after another.
    assert call(client, "GET", "/sftp/status", zone.cfg).json()["total_tracked_files"] == 20
    spans = sorted((r.started_at.timestamp(), r.duration) for r in client.portal.call(_scans(app)))
    assert len(spans) == 4 and sum(1 for _ in spans) == 4
    for (start, dur), (nxt, _) in zip(spans, spans[1:], strict=False):
        assert nxt >= start + dur - 0.01, spans


def _scans(app):
    from sqlalchemy import select

    from fileregistry.sftp.models import ScanRecord

    async def go():
        async with unit_of_work(app.state.sessions) as s:
            return list(await s.scalars(select(ScanRecord)))
    return go
