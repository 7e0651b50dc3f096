"""``fileregistry fs upload`` stopped with Ctrl-C (SIGINT) mid-upload: its job ends ``failed`` with a
message saying so (never ``running``) and the file system keeps its tree."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from fileregistry.db import create_nullpool_engine
from fileregistry.jobs.models import jobs
from tests.vfs.conftest import SEED_BODY


def write_big_body(path: Path, lines: int) -> None:
    with open(path, "wb") as f:
        for start in range(0, lines, 10_000):
            f.write(b"".join(
                b'{"path": "/d%d/", "name": "f%d", "is_directory": false, "size_in_bytes": %d, '
                b'"owner": "o", "ts_last_modified": "2020-01-01 00:00:00"}\n' % (i // 1000, i, i)
                for i in range(start, min(start + 10_000, lines))))


async def job_rows(url: str) -> list:
    engine = create_nullpool_engine(url)
    try:
        async with engine.connect() as conn:
            return (await conn.execute(sa.select(jobs).order_by(jobs.c.id))).all()
    finally:
        await engine.dispose()


def test_ctrl_c_mid_upload_marks_the_job_failed(vfs, client, settings, tmp_path):
    fs = vfs.create()
    assert vfs.run(fs, SEED_BODY)["status"] == "successful"
    before = vfs.tree(fs)
    big = tmp_path / "big.jsonl"
    write_big_body(big, 600_000)
    url = settings.resolved_database_url
    known = {r.id for r in asyncio.run(job_rows(url))}
    env = dict(os.environ, FILEREGISTRY_DATABASE_URL=url, FILEREGISTRY_DATA_DIR=str(settings.data_dir),
               FILEREGISTRY_LOG_LEVEL="WARNING")
    proc = subprocess.Popen([sys.executable, "-m", "fileregistry.cli", "fs", "upload", str(fs), str(big)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            new = [r for r in asyncio.run(job_rows(url)) if r.id not in known]
            if new:
                break
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the CLI never started its job"
            time.sleep(0.05)
        job_id = new[0].id
        assert new[0].phase == "started"
        time.sleep(0.5)  # into the upload
        assert proc.poll() is None, "the upload ended before it could be interrupted"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, (proc.returncode, out, err)
    assert b"interrupted" in err.lower() and b"Traceback" not in err, err
    job = vfs.wait(job_id, timeout=1)
    assert job["status"] == "failed", job
    assert job["msg"].startswith("Interrupted: the upload was stopped (Ctrl-C)"), job
    assert vfs.tree(fs) == before
