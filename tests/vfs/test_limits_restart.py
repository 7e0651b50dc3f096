"""413 above the size limit; a job cut off by a restart is run again or failed with a message."""

from __future__ import annotations

import asyncio
import gzip

import orjson
import pytest
from fastapi.testclient import TestClient

from fileregistry.app import create_app
from fileregistry.db import create_nullpool_engine, session_factory, unit_of_work
from fileregistry.jobs import store as jobs_store
from tests.vfs.conftest import SEED_BODY, Vfs


@pytest.fixture
def settings(settings):
    settings.vfs_max_upload_bytes = 2000
    return settings


def test_413_above_limit_and_fs_unchanged(vfs):
    fs = vfs.create()
    assert vfs.run(fs, SEED_BODY)["status"] == "successful"
    big = SEED_BODY * 10
    r = vfs.upload(fs, big)
    assert r.status_code == 413 and "limit" in r.json()["error"]
    # the limit applies to the decoded bytes too: a small gzip body cannot get round it
    r = vfs.upload(fs, gzip.compress(big.encode()), headers={"Content-Encoding": "gzip"})
    assert r.status_code == 413
    assert len(vfs.tree(fs)) == 3


async def _insert_cut_off_job(url: str, fs_id: int, spool: str | None, attempts: int) -> int:
    engine = create_nullpool_engine(url)
    try:
        async with unit_of_work(session_factory(engine)) as s:
            job_id = await jobs_store.create_job(s, "vfs_upload", fs_id=fs_id, params={"spool": spool})
            from sqlalchemy import update

            from fileregistry.jobs.models import jobs
            await s.execute(update(jobs).where(jobs.c.id == job_id).values(phase="started", attempts=attempts))
            return job_id
    finally:
        await engine.dispose()


def test_restart_reruns_or_fails_cut_off_jobs(vfs, client, app, tmp_path):
    fs = vfs.create()
    url = app.state.settings.resolved_database_url
    spool = tmp_path / "left-behind.jsonl"
    spool.write_text(SEED_BODY)
    rerun = asyncio.run(_insert_cut_off_job(url, fs, str(spool), attempts=1))
    gone = asyncio.run(_insert_cut_off_job(url, fs, str(tmp_path / "missing.jsonl"), attempts=1))
    spool2 = tmp_path / "retried.jsonl"
    spool2.write_text(SEED_BODY)
    twice = asyncio.run(_insert_cut_off_job(url, fs, str(spool2), attempts=2))
    # "restart": a new app on the same database
    with TestClient(create_app(app.state.settings), headers={"TOKEN": client.headers["TOKEN"]}) as c2:
        v2 = Vfs(c2)
        j = v2.wait(rerun)
        assert j["status"] == "successful" and j["counts"]["added"] == 3
        assert "server restart" in j["msg"]
        for job_id in (gone, twice):
            j = v2.wait(job_id)
            assert j["status"] == "failed"
            assert "restarted while this job was running" in j["msg"]
        assert len(v2.tree(fs)) == 3
    assert not spool.exists() and not spool2.exists()  # spools removed once their jobs end
    assert orjson.loads(orjson.dumps(j))  # plain JSON
