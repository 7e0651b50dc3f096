"""Job leases: a server never takes over a job another live process is running (its heartbeat is
fresh), takes it over once the lease runs out or its process is gone, and two servers on one
database run each job once, the jobs of one file system one at a time in arrival order."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from datetime import timedelta

import sqlalchemy as sa
from fastapi.testclient import TestClient

from fileregistry.app import create_app
from fileregistry.db import create_nullpool_engine, session_factory, unit_of_work, utcnow
from fileregistry.jobs import runner
from fileregistry.jobs import store as jobs_store
from fileregistry.jobs.models import jobs
from tests.vfs.conftest import SEED_BODY, Vfs, item, jsonl


async def _db(url: str, fn):
    engine = create_nullpool_engine(url)
    try:
        async with unit_of_work(session_factory(engine)) as s:
            return await fn(s)
    finally:
        await engine.dispose()


def _started_job(url: str, fs_id: int, spool: str, owner: str, beat) -> int:
    async def go(s):
        job_id = await jobs_store.create_job(s, "vfs_upload", fs_id=fs_id, params={"spool": spool})
        await s.execute(sa.update(jobs).where(jobs.c.id == job_id).values(
            phase="started", attempts=1, owner=owner, heartbeat_at=beat))
        return job_id
    return asyncio.run(_db(url, go))


def _row(url: str, job_id: int):
    async def go(s):
        return (await s.execute(sa.select(jobs).where(jobs.c.id == job_id))).one()
    return asyncio.run(_db(url, go))


def _dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def test_live_job_of_another_server_is_left_alone_until_its_lease_runs_out(vfs, client, settings, tmp_path,
                                                                           monkeypatch):
    monkeypatch.setattr(runner, "HEARTBEAT_SECONDS", 0.1)  # recovery passes every 0.1 s
    fs = vfs.create()
    url = settings.resolved_database_url
    spool = tmp_path / "live.jsonl"
    spool.write_text(SEED_BODY)
    job_id = _started_job(url, fs, str(spool), "other-host/4242/abc.1", utcnow())
    with TestClient(create_app(settings), headers={"TOKEN": client.headers["TOKEN"]}) as c2:
        time.sleep(1.0)  # a start-up recovery and many periodic ones, by both servers
        row = _row(url, job_id)
        assert (row.phase, row.status, row.attempts) == ("started", "running", 1)
        assert row.owner == "other-host/4242/abc.1"
        assert spool.exists()
        # that server stops beating: once the lease is over, one of ours takes the job over
        old = utcnow() - timedelta(seconds=runner.LEASE_SECONDS + 1)
        asyncio.run(_db(url, lambda s: s.execute(sa.update(jobs).where(jobs.c.id == job_id)
                                                   .values(heartbeat_at=old))))
        j = Vfs(c2).wait(job_id, timeout=30)
        assert j["status"] == "successful" and "server restart" in j["msg"], j
        assert _row(url, job_id).attempts == 2
        assert len(Vfs(c2).tree(fs)) == 3


def test_job_of_a_gone_local_process_is_taken_over_at_once(vfs, client, settings, tmp_path):
    fs = vfs.create()
    url = settings.resolved_database_url
    host = socket.gethostname()[:60]
    spools = []
    for n in range(2):
        p = tmp_path / f"s{n}.jsonl"
        p.write_text(SEED_BODY)
        spools.append(str(p))
    dead = _started_job(url, fs, spools[0], f"{host}/{_dead_pid()}/feed.1", utcnow())
    # an earlier process that had our pid (a restarted container's pid 1): same pid, other token
    import os
    earlier = _started_job(url, fs, spools[1], f"{host}/{os.getpid()}/earlier.1", utcnow())
    with TestClient(create_app(settings), headers={"TOKEN": client.headers["TOKEN"]}) as c2:
        for job_id in (dead, earlier):
            j = Vfs(c2).wait(job_id, timeout=30)
            assert j["status"] == "successful" and "server restart" in j["msg"], j


def test_a_cut_off_job_is_taken_over_by_one_runner_only(vfs, settings):
    fs = vfs.create()
    url = settings.resolved_database_url
    beat = utcnow() - timedelta(hours=1)
    job_id = _started_job(url, fs, "/nonexistent", "other-host/1/x.1", beat)

    async def both(s):
        row = (await s.execute(sa.select(jobs).where(jobs.c.id == job_id))).one()
        first = await jobs_store.requeue(s, job_id, "again", owner=row.owner, heartbeat_at=row.heartbeat_at)
        second = await jobs_store.fail_cut_off(s, job_id, "failed", owner=row.owner,
                                               heartbeat_at=row.heartbeat_at)
        return first, second
    # both saw the same expired lease; the second compare-and-set must lose
    assert asyncio.run(_db(url, both)) == (True, False)


def test_two_servers_run_each_job_once_in_order_per_file_system(vfs, client, settings, monkeypatch):
    fs_a, fs_b = vfs.create("a"), vfs.create("b")
    runs: list[tuple[int, int, float, float]] = []  # (fs, job, start, end) of each handler run
    real, rerunnable = runner.HANDLERS["vfs_upload"]

    async def timed(ctx):
        start = time.monotonic()
        try:
            return await real(ctx)
        finally:
            runs.append((ctx.job.fs_id, ctx.job.id, start, time.monotonic()))

    monkeypatch.setitem(runner.HANDLERS, "vfs_upload", (timed, rerunnable))
    with TestClient(create_app(settings), headers={"TOKEN": client.headers["TOKEN"]}) as c2:
        servers = [vfs, Vfs(c2)]
        ids: dict[int, list[int]] = {fs_a: [], fs_b: []}
        for k in range(6):
            for fs in (fs_a, fs_b):
                body = jsonl(*(item(f"/d{k}/", f"f{i}") for i in range(200)))
                r = servers[k % 2].upload(fs, body)
                assert r.status_code == 200, r.text
                ids[fs].append(r.json()["job"]["id"])
        for fs, job_ids in ids.items():
            for job_id in job_ids:
                j = servers[job_id % 2].wait(job_id, timeout=60)
                assert j["status"] == "successful", j
            rows = [_row(settings.resolved_database_url, job_id) for job_id in job_ids]
            assert [r.attempts for r in rows] == [1] * 6  # each ran once
            mine = [r for r in runs if r[0] == fs]
            assert [r[1] for r in mine] == job_ids  # once each, in arrival order
            for prev, nxt in zip(mine, mine[1:], strict=False):
                assert nxt[2] >= prev[3], "jobs of one file system overlapped"
            assert {t[1] for t in vfs.tree(fs)} == {"/d5"} | {f"/d5/f{i}" for i in range(200)}


def test_job_of_a_live_local_process_waits_for_the_longer_local_lease(vfs, client, settings, tmp_path,
                                                                       monkeypatch):
    """A process of this host that still runs keeps its job past LEASE_SECONDS without heartbeats
    (on SQLite a long replace holds the write lock its heartbeat needs); past LOCAL_LEASE_SECONDS
    it is taken over (its pid may belong to another program by then)."""
    import os

    monkeypatch.setattr(runner, "HEARTBEAT_SECONDS", 0.1)
    fs = vfs.create()
    url = settings.resolved_database_url
    spool = tmp_path / "live.jsonl"
    spool.write_text(SEED_BODY)
    owner = f"{socket.gethostname()[:60]}/{os.getppid()}/other.1"  # alive: pytest's parent
    stale = utcnow() - timedelta(seconds=runner.LEASE_SECONDS + 5)
    job_id = _started_job(url, fs, str(spool), owner, stale)
    with TestClient(create_app(settings), headers={"TOKEN": client.headers["TOKEN"]}) as c2:
        time.sleep(1.0)
        row = _row(url, job_id)
        assert (row.phase, row.status, row.owner) == ("started", "running", owner)
        older = utcnow() - timedelta(seconds=runner.LOCAL_LEASE_SECONDS + 5)
        asyncio.run(_db(url, lambda s: s.execute(sa.update(jobs).where(jobs.c.id == job_id)
                                                   .values(heartbeat_at=older))))
        j = Vfs(c2).wait(job_id, timeout=30)
        assert j["status"] == "successful" and "server restart" in j["msg"], j
