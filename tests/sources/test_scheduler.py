"""The scheduler: due sources are scanned once per interval, failures back off, nothing overlaps."""

from __future__ import annotations

import random
import socket
import time
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from fileregistry.db import unit_of_work, utcnow
from fileregistry.sftp.models import ScanRecord
from fileregistry.sources.models import ScanLease, Source
from fileregistry.sources.scheduler import Scheduler, next_delay
from tests.sftp.helpers import call


def test_next_delay_doubles_per_failure_up_to_the_cap():
    rng = random.Random(1)
    assert next_delay(60, 0, max_backoff=3600, jitter=0, rng=rng) == 60
    assert next_delay(60, 1, max_backoff=3600, jitter=0, rng=rng) == 120
    assert next_delay(60, 3, max_backoff=3600, jitter=0, rng=rng) == 480
    assert next_delay(60, 20, max_backoff=3600, jitter=0, rng=rng) == 3600
    assert next_delay(7200, 5, max_backoff=3600, jitter=0, rng=rng) == 7200  # never below the interval
    spread = {round(next_delay(100, 0, max_backoff=3600, jitter=0.1, rng=rng)) for _ in range(200)}
    assert min(spread) >= 90 and max(spread) <= 110 and len(spread) > 10


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def portal(client):
    return client.portal


def _run(portal, fn, *args):
    return portal.call(fn, *args)


def _source_rows(app) -> dict[str, Source]:
    async def go():
        async with unit_of_work(app.state.sessions) as s:
            return {r.name: r for r in await s.scalars(select(Source))}
    return go


def _scans(app):
    async def go():
        async with unit_of_work(app.state.sessions) as s:
            return list(await s.scalars(select(ScanRecord).order_by(ScanRecord.id)))
    return go


def _make_due(app, *names):
    async def go():
        async with unit_of_work(app.state.sessions) as s:
            await s.execute(update(Source).where(Source.name.in_(names)).values(next_scan_at=utcnow()))
    return go


def test_tick_scans_due_sources_and_backs_off_a_failing_one(client, app, zone, settings, portal):
    zone.put("due.csv", b"1\n")
    good = {"config": zone.cfg, "scan_interval_seconds": 60}
    bad = {"config": {**zone.cfg, "port": _closed_port(), "remote_path": "/elsewhere"}, "scan_interval_seconds": 60}
    assert client.put("/generic/sftp-config/good", json=good).status_code == 200
    assert client.put("/generic/sftp-config/bad", json=bad).status_code == 200
    client.put("/generic/sftp-config/manual", json={"config": zone.cfg})  # no interval: never scheduled
    settings.scheduler_jitter = 0
    sched = Scheduler(settings, app.state.sessions, app.state.cipher)

    before = utcnow()
    assert sorted(_run(portal, sched.tick)) == ["bad", "good"]
    _run(portal, sched.wait_idle)
    rows = _run(portal, _source_rows(app))
    assert rows["good"].consecutive_failures == 0 and rows["good"].last_error is None
    assert abs((rows["good"].next_scan_at - before).total_seconds() - 60) < 5
    assert rows["bad"].consecutive_failures == 1 and "refused" in rows["bad"].last_error
    assert abs((rows["bad"].next_scan_at - before).total_seconds() - 120) < 5
    assert rows["manual"].next_scan_at is None
    scans = _run(portal, _scans(app))
    assert {s.trigger for s in scans} == {"schedule"} and len(scans) == 2
    assert sorted(s.error is None for s in scans) == [False, True]
    assert [f["path"] for f in call(client, "GET", "/sftp/new-files", {"source": "good"}).json()["new_files"]] \
        == ["due.csv"]

    # Nothing is due right after: no scan.
    assert _run(portal, sched.tick) == []
    # The failing source fails again: the wait doubles again.
    _run(portal, _make_due(app, "bad"))
    before = utcnow()
    assert _run(portal, sched.tick) == ["bad"]
    _run(portal, sched.wait_idle)
    row = _run(portal, _source_rows(app))["bad"]
    assert row.consecutive_failures == 2 and abs((row.next_scan_at - before).total_seconds() - 240) < 5
    # Fixed: one success resets the backoff.
    client.put("/generic/sftp-config/bad", json={**bad, "config": zone.cfg})
    assert _run(portal, sched.tick) == ["bad"]
    _run(portal, sched.wait_idle)
    assert _run(portal, _source_rows(app))["bad"].consecutive_failures == 0


def test_two_schedulers_claim_each_slot_once(client, app, zone, settings, portal):
    client.put("/generic/sftp-config/one", json={"config": zone.cfg, "scan_interval_seconds": 60})
    a = Scheduler(settings, app.state.sessions, app.state.cipher)
    b = Scheduler(settings, app.state.sessions, app.state.cipher)

    async def both():
        import asyncio

        got = await asyncio.gather(a.tick(), b.tick())
        await a.wait_idle()
        await b.wait_idle()
        return got

    got = _run(portal, both)
    assert sorted(got) == [[], ["one"]]
    assert len(_run(portal, _scans(app))) == 1


def test_a_busy_connection_is_skipped_and_retried_soon(client, app, zone, settings, portal):
    client.put("/generic/sftp-config/busy", json={"config": zone.cfg, "scan_interval_seconds": 600})

    async def hold():
        async with unit_of_work(app.state.sessions) as s:
            now = utcnow()
            s.add(ScanLease(connection_key=zone.key, owner="other-process", acquired_at=now,
                            expires_at=now + timedelta(seconds=60)))

    _run(portal, hold)
    sched = Scheduler(settings, app.state.sessions, app.state.cipher)
    before = utcnow()
    assert _run(portal, sched.tick) == ["busy"]
    _run(portal, sched.wait_idle)
    row = _run(portal, _source_rows(app))["busy"]
    assert _run(portal, _scans(app)) == []  # no scan ran, none recorded
    assert row.consecutive_failures == 0
    assert (row.next_scan_at - before).total_seconds() < 30  # retried soon, not after 600 s


def test_the_server_scans_on_its_own(settings, zone, tmp_path):
    from fastapi.testclient import TestClient

    from fileregistry.app import create_app

    settings.scheduler_enabled = True
    settings.scheduler_tick_seconds = 0.1
    app = create_app(settings)
    zone.put("auto.csv", b"a\n")
    with TestClient(app) as c:
        from tests.conftest import _make_auth_tokens, _run as run_sync

        c.headers["TOKEN"] = run_sync(_make_auth_tokens(settings)).admin_token
        assert c.put("/generic/sftp-config/auto", json={"config": zone.cfg, "scan_interval_seconds": 1}
                     ).status_code == 200
        deadline = time.monotonic() + 20
        names: list[str] = []
        while time.monotonic() < deadline and not names:
            time.sleep(0.1)
            names = [f["path"] for f in c.get("/sftp/new-files", params={"source": "auto"}).json()["new_files"]]
        assert names == ["auto.csv"]
        assert (zone.mirror / "new" / "auto.csv").read_bytes() == b"a\n"
