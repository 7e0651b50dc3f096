"""Two server processes on one PostgreSQL scan a source once per interval, never at the same time."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time

import httpx
import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import select

from fileregistry.config import Settings
from fileregistry.db import create_nullpool_engine, session_factory, unit_of_work
from fileregistry.sftp.models import ScanRecord
from fileregistry.sftp.schemas import SFTPConfig
from fileregistry.sources import service
from fileregistry.sources.crypto import SecretCipher, verify_cipher
from tests.sftp.helpers import Zone

INTERVAL = 2
RUN_FOR = 11.0


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _store_source(url: str, key: str, cfg: dict) -> None:
    engine = create_nullpool_engine(url)
    try:
        sessions = session_factory(engine)
        cipher = SecretCipher([key.encode()])
        await verify_cipher(sessions, cipher)
        await service.put_source(sessions, cipher, "shared", SFTPConfig.model_validate(cfg), INTERVAL)
    finally:
        await engine.dispose()


async def _scans(url: str) -> list[ScanRecord]:
    engine = create_nullpool_engine(url)
    try:
        async with unit_of_work(session_factory(engine)) as s:
            return list(await s.scalars(select(ScanRecord).order_by(ScanRecord.started_at)))
    finally:
        await engine.dispose()


@pytest.mark.postgres
def test_two_processes_scan_once_per_interval(pg_url, sshd, tmp_path):
    from tests.conftest import _truncate_all

    asyncio.run(_truncate_all(pg_url))
    key = Fernet.generate_key().decode()
    data = tmp_path / "data"
    zone = Zone(sshd, Settings(data_dir=data).resolved_mirror_dir)
    for i in range(5):
        zone.put(f"f{i}.csv", b"x" * 100)
    asyncio.run(_store_source(pg_url, key, zone.cfg))

    env = dict(os.environ, FILEREGISTRY_DATA_DIR=str(data), FILEREGISTRY_DATABASE_URL=pg_url,
               FILEREGISTRY_SECRET_KEY=key, FILEREGISTRY_SCHEDULER_TICK_SECONDS="0.2",
               FILEREGISTRY_SCHEDULER_JITTER="0", FILEREGISTRY_LOG_LEVEL="WARNING")
    ports = [_port(), _port()]
    procs = [subprocess.Popen([sys.executable, "-m", "fileregistry.cli", "serve", "--port", str(p)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for p in ports]
    try:
        for p in ports:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{p}/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
        t0 = time.monotonic()
        time.sleep(RUN_FOR)
        elapsed = time.monotonic() - t0
    finally:
        for p in procs:
            p.terminate()
        errs = [p.communicate(timeout=30)[1].decode(errors="replace") for p in procs]
    assert all(p.returncode is not None for p in procs)

    scans = [s for s in asyncio.run(_scans(pg_url)) if s.trigger == "schedule"]
    assert all(s.error is None for s in scans), [s.error for s in scans]
    # Once per interval in all, not once per process: two processes would make about twice as many.
    most = int((elapsed + 3) / INTERVAL) + 1  # the startup of the slower process adds up to ~3 s
    assert 3 <= len(scans) <= most, (len(scans), most, errs)
    # One after another, never overlapping, and spaced by the interval.
    for a, b in zip(scans, scans[1:], strict=False):
        assert b.started_at.timestamp() >= a.started_at.timestamp() + a.duration - 0.01
        assert b.started_at.timestamp() - a.started_at.timestamp() >= INTERVAL - 0.3
    assert sum(s.new_count for s in scans) == 5  # each file downloaded once
    for e in errs:
        assert key not in e
