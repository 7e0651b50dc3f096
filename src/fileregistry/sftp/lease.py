"""The scan lease: at most one scan per connection at a time, across every process on one database.

Inside a process an asyncio lock orders scans and moves (:data:`connection_lock`); across processes a
row in ``sftp_scan_leases`` does, taken with an atomic insert-or-steal-if-expired and renewed by a
heartbeat while the scan runs, so a crashed holder frees it after ``scan_lease_seconds``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

from sqlalchemy import delete, or_, update
from sqlalchemy.dialects import postgresql, sqlite

from fileregistry.config import Settings
from fileregistry.db import unit_of_work, utcnow
from fileregistry.errors import Conflict
from fileregistry.sftp.connections import Sessions, connection_lock
from fileregistry.sources.models import ScanLease

log = logging.getLogger("fileregistry.sftp")


async def try_acquire(sessions: Sessions, key: str, owner: str, ttl: float) -> bool:
    now = utcnow()
    expires = now + timedelta(seconds=ttl)
    async with unit_of_work(sessions) as s:
        dialect = s.bind.dialect.name
        ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(ScanLease)
        res = await s.execute(ins.values(connection_key=key, owner=owner, acquired_at=now, expires_at=expires)
                              .on_conflict_do_nothing(index_elements=["connection_key"]))
        if res.rowcount == 1:
            return True
        # Taken: steal it only if its holder stopped renewing. On PostgreSQL a concurrent stealer
        # re-checks the WHERE after our commit and finds it no longer expired.
        res = await s.execute(
            update(ScanLease)
            .where(ScanLease.connection_key == key, or_(ScanLease.expires_at < now, ScanLease.owner == owner))
            .values(owner=owner, acquired_at=now, expires_at=expires)
        )
        return res.rowcount == 1


async def _renew(sessions: Sessions, key: str, owner: str, ttl: float) -> bool:
    async with unit_of_work(sessions) as s:
        res = await s.execute(update(ScanLease).where(ScanLease.connection_key == key, ScanLease.owner == owner)
                              .values(expires_at=utcnow() + timedelta(seconds=ttl)))
        return res.rowcount == 1


async def _release(sessions: Sessions, key: str, owner: str) -> None:
    async with unit_of_work(sessions) as s:
        await s.execute(delete(ScanLease).where(ScanLease.connection_key == key, ScanLease.owner == owner))


def _busy(key: str) -> Conflict:
    return Conflict(f"a scan of {key} is already running; retry when it has finished")


@contextlib.asynccontextmanager
async def scan_guard(key: str, *, settings: Settings, sessions: Sessions, wait: bool) -> AsyncIterator[None]:
    """Hold this process's lock and the database lease of ``key``.

    ``wait``: wait up to ``scan_wait_timeout`` for a running scan (then :class:`Conflict`); otherwise
    raise :class:`Conflict` at once (the scheduler skips a busy connection).
    """
    lock = connection_lock(key)
    if not wait and lock.locked():
        raise _busy(key)
    try:
        async with asyncio.timeout(settings.scan_wait_timeout if wait else 0.5):
            await lock.acquire()
    except TimeoutError:
        raise _busy(key) from None
    try:
        owner = uuid.uuid4().hex
        ttl = settings.scan_lease_seconds
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (settings.scan_wait_timeout if wait else 0)
        while not await try_acquire(sessions, key, owner, ttl):
            if loop.time() >= deadline:
                raise _busy(key)
            await asyncio.sleep(min(0.5, max(0.05, deadline - loop.time())))
        heartbeat = asyncio.create_task(_heartbeat(sessions, key, owner, ttl))
        try:
            yield
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
            with contextlib.suppress(Exception):  # an expired lease frees itself anyway
                await _release(sessions, key, owner)
    finally:
        lock.release()


async def _heartbeat(sessions: Sessions, key: str, owner: str, ttl: float) -> None:
    while True:
        await asyncio.sleep(ttl / 3)
        try:
            if not await _renew(sessions, key, owner, ttl):
                log.warning("scan lease of %s was lost (renewal too late); another scan may start", key)
                return
        except Exception as exc:  # noqa: BLE001 - keep the scan going; the lease may still hold
            log.warning("scan lease of %s could not be renewed: %s", key, type(exc).__name__)
