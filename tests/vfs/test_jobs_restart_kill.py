"""A real restart: ``fileregistry serve`` killed with SIGKILL while an upload job runs, then started
again. The job ends ``successful`` or ``failed`` (never stays ``running``) and the tree is the old
one or the complete new one."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import sqlalchemy as sa

from fileregistry.db import create_nullpool_engine
from fileregistry.jobs.models import jobs
from fileregistry.vfs.models import entries
from tests.conftest import _make_auth_tokens
from tests.vfs.conftest import SEED_BODY
from tests.vfs.test_jobs_cli_interrupt import write_big_body

LINES = 600_000
NEW_COUNT = LINES + LINES // 1000  # the files and their implied directories /d0 .. /d599


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(env: dict) -> tuple[subprocess.Popen, str]:
    port = _port()
    proc = subprocess.Popen([sys.executable, "-m", "fileregistry.cli", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base}/healthz").status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        assert proc.poll() is None, "the server exited"
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.1)


async def _phase_and_count(url: str, job_id: int, fs_id: int) -> tuple[str, int]:
    engine = create_nullpool_engine(url)
    try:
        async with engine.connect() as conn:
            phase = (await conn.execute(sa.select(jobs.c.phase).where(jobs.c.id == job_id))).scalar_one()
            n = (await conn.execute(sa.select(sa.func.count()).select_from(entries)
                                    .where(entries.c.fs_id == fs_id))).scalar_one()
            return phase, n
    finally:
        await engine.dispose()


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_kill_9_mid_job_then_restart(settings, tmp_path):
    url = settings.resolved_database_url
    token = asyncio.run(_make_auth_tokens(settings)).admin_token
    env = dict(os.environ, FILEREGISTRY_DATA_DIR=str(settings.data_dir), FILEREGISTRY_DATABASE_URL=url,
               FILEREGISTRY_LOG_LEVEL="WARNING", FILEREGISTRY_SCHEDULER_ENABLED="false")
    big = tmp_path / "big.jsonl"
    write_big_body(big, LINES)
    h = {"TOKEN": token}
    proc, base = _serve(env)
    try:
        fs = httpx.post(f"{base}/api/v1/filesystem/", json={"name": "k"}, headers=h).json()["id"]
        r = httpx.post(f"{base}/api/v1/bulk_metadata/file_upload/{fs}/", content=SEED_BODY, headers=h)
        job0 = r.json()["job"]["id"]
        deadline = time.monotonic() + 30
        while httpx.get(f"{base}/api/job/{job0}/", headers=h).json()["status"] == "running":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        with open(big, "rb") as f:
            r = httpx.post(f"{base}/api/v1/bulk_metadata/file_upload/{fs}/", content=f, headers=h,
                           timeout=120)
        assert r.status_code == 200, r.text
        job_id = r.json()["job"]["id"]
        deadline = time.monotonic() + 30
        while asyncio.run(_phase_and_count(url, job_id, fs))[0] != "started":
            assert time.monotonic() < deadline, "the job never started"
            time.sleep(0.02)
        time.sleep(0.3)  # into the replace
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    phase, n = asyncio.run(_phase_and_count(url, job_id, fs))
    assert phase == "started", "the job was not cut off mid-run"
    assert n in (3, NEW_COUNT), n  # never half a tree
    proc, base = _serve(env)
    try:
        deadline = time.monotonic() + 120
        while True:
            job = httpx.get(f"{base}/api/v1/bulk_metadata/job/", params={"id": job_id}, headers=h).json()
            assert job["status"] in ("running", "successful", "failed")
            if job["status"] != "running":
                break
            assert time.monotonic() < deadline, f"job still running after the restart: {job}"
            time.sleep(0.2)
        body = httpx.get(f"{base}/api/v1/filesystem/{fs}/", headers=h).json()
        assert "restart" in job["msg"], job
        if job["status"] == "successful":
            assert body["entry_count"] == NEW_COUNT, (job, body)
        else:
            assert body["entry_count"] == 3, (job, body)
    finally:
        _stop(proc)
