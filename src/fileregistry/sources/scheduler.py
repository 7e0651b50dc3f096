"""Scheduled scans of stored sources.

Every ``scheduler_tick_seconds`` each process looks for due sources and *claims* each one by moving
its ``next_scan_at`` forward with a conditional UPDATE (only one process's update matches the value
it read), so N processes on one PostgreSQL scan a source once per interval, not N times. The claim
pushes ``next_scan_at`` past the scan lease, so a process that dies mid-scan leaves a source that is
due again soon. The scan itself runs under the connection's scan lease (no overlap with any other
scan of it). Failures back off exponentially and are recorded in the scan history and on the source;
one failing source never stops the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

from fastapi import FastAPI

from fileregistry.config import Settings
from fileregistry.db import unit_of_work, utcnow
from fileregistry.errors import AppError, Conflict
from fileregistry.sftp import monitor
from fileregistry.sources import service, store
from fileregistry.sources.crypto import SecretCipher

log = logging.getLogger("fileregistry.scheduler")


def next_delay(interval: float, failures: int, *, max_backoff: float, jitter: float,
               rng: random.Random | None = None) -> float:
    """Seconds until the next scan: the interval, doubled per consecutive failure up to
    ``max(max_backoff, interval)``, then spread by +/- ``jitter`` (so sources don't move in lockstep)."""
    base = interval if failures <= 0 else min(interval * 2 ** failures, max(max_backoff, interval))
    r = (rng or random).uniform(-jitter, jitter)
    return max(1.0, base * (1 + r))


class Scheduler:
    def __init__(self, settings: Settings, sessions, cipher: SecretCipher) -> None:
        self.settings = settings
        self.sessions = sessions
        self.cipher = cipher
        self._slots = asyncio.Semaphore(settings.scheduler_concurrency)
        self._running: set[asyncio.Task] = set()

    async def run(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception as exc:  # noqa: BLE001 - a bad tick (database gone) must not end the loop
                log.warning("scheduler tick failed: %s: %s", type(exc).__name__, exc)
            await asyncio.sleep(self.settings.scheduler_tick_seconds)

    async def tick(self) -> list[str]:
        """Claim the due sources this process has room for and start their scans; returns their names."""
        now = utcnow()
        async with unit_of_work(self.sessions) as s:
            due = await store.due(s, now)
        started = []
        for name, seen in due:
            if self._slots.locked():
                break
            hold = now + timedelta(seconds=self.settings.scan_lease_seconds * 2)
            async with unit_of_work(self.sessions) as s:
                if not await store.claim(s, name, seen, hold):
                    continue  # another process took this slot
            await self._slots.acquire()
            task = asyncio.create_task(self._scan(name), name=f"scan {name}")
            self._running.add(task)
            task.add_done_callback(self._running.discard)
            started.append(name)
        return started

    async def _scan(self, name: str) -> None:
        try:
            await self.scan_source(name)
        finally:
            self._slots.release()

    async def scan_source(self, name: str) -> None:
        """One scheduled scan of ``name`` and its bookkeeping; never raises (except cancellation)."""
        error: str | None = None
        try:
            config = await service.resolve_config(self.sessions, self.cipher, name)
            interval = await self._interval(name)
            if interval is None:
                return  # the schedule was removed meanwhile
            await monitor.scan(config, settings=self.settings, sessions=self.sessions, trigger="schedule",
                               wait=False)
        except Conflict:
            # A scan of this connection is running elsewhere (a request, the CLI): try again soon.
            await self._finish(name, delay=self.settings.scheduler_tick_seconds * 5, failures=None, error=None)
            return
        except AppError as exc:
            error = exc.message
        except Exception as exc:  # noqa: BLE001 - a bug in one source's scan must not stop the others
            log.exception("scheduled scan of %s failed unexpectedly", name)
            error = f"internal error: {type(exc).__name__}"
        async with unit_of_work(self.sessions) as s:
            row = await store.get(s, name)
            if row is None or row.scan_interval_seconds is None:
                return
            failures = row.consecutive_failures + 1 if error else 0
            interval = row.scan_interval_seconds
        if error:
            log.warning("scheduled scan of %s failed (%d in a row): %s", name, failures, error)
        delay = next_delay(interval, failures, max_backoff=self.settings.scheduler_max_backoff_seconds,
                           jitter=self.settings.scheduler_jitter)
        await self._finish(name, delay=delay, failures=failures, error=error)

    async def _interval(self, name: str) -> int | None:
        async with unit_of_work(self.sessions) as s:
            row = await store.get(s, name)
            return row.scan_interval_seconds if row else None

    async def _finish(self, name: str, *, delay: float, failures: int | None, error: str | None) -> None:
        at: datetime = utcnow() + timedelta(seconds=delay)
        async with unit_of_work(self.sessions) as s:
            if failures is None:
                row = await store.get(s, name)
                if row is None:
                    return
                failures, error = row.consecutive_failures, row.last_error
            await store.set_outcome(s, name, next_scan_at=at, failures=failures, error=error)

    async def wait_idle(self) -> None:
        """Until the scans this process started have finished."""
        while self._running:
            await asyncio.wait(list(self._running))

    async def aclose(self) -> None:
        for t in list(self._running):
            t.cancel()
        if self._running:
            await asyncio.wait(list(self._running))


@contextlib.asynccontextmanager
async def scheduler(app: FastAPI) -> AsyncIterator[None]:
    """App component: runs the scheduler loop for the app's lifetime (if enabled)."""
    settings: Settings = app.state.settings
    if not settings.scheduler_enabled:
        yield
        return
    sched = Scheduler(settings, app.state.sessions, app.state.cipher)
    app.state.scheduler = sched
    loop_task = asyncio.create_task(sched.run(), name="fileregistry scheduler")
    try:
        yield
    finally:
        loop_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop_task
        await sched.aclose()
