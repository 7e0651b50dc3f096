"""The job runner: durable jobs from the ``jobs`` table, run in the server process.

* Jobs of one file system (``fs_id``) run one at a time, in arrival (id) order; jobs of
  different file systems may run side by side (up to ``CONCURRENCY``).
* On start, a job left ``started`` by a crash is queued again once (its work is one database
  transaction, so a cut-off run left nothing behind), and marked ``failed`` with a message
  saying so if it was already retried or its input is gone. No job stays ``running`` forever.
* Handlers are registered per job kind with :func:`handler`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from fileregistry.db import unit_of_work
from fileregistry.jobs import store
from fileregistry.jobs.store import FAILED, JobView

log = logging.getLogger("fileregistry.jobs")

CONCURRENCY = 2
POLL_SECONDS = 2.0
MAX_ATTEMPTS = 2


@dataclass
class JobResult:
    status: str
    msg: str
    result: list[str]
    counts: dict[str, Any] = field(default_factory=dict)
    issues: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class JobContext:
    job: JobView
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    settings: Any


Handler = Callable[[JobContext], Awaitable[JobResult]]
# Recovery hook per kind: may a cut-off job be run again? (e.g. is its spooled input still there)
Rerunnable = Callable[[JobView], bool]
HANDLERS: dict[str, tuple[Handler, Rerunnable | None]] = {}


def handler(kind: str, rerunnable: Rerunnable | None = None):
    def deco(fn: Handler) -> Handler:
        HANDLERS[kind] = (fn, rerunnable)
        return fn
    return deco


class JobRunner:
    def __init__(self, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], settings: Any) -> None:
        self.engine = engine
        self.sessions = sessions
        self.settings = settings
        self._wake = asyncio.Event()
        self._busy_fs: set[int | None] = set()
        self._tasks: set[asyncio.Task] = set()
        self._loop_task: asyncio.Task | None = None

    def wake(self) -> None:
        self._wake.set()

    async def recover(self) -> None:
        async with unit_of_work(self.sessions) as s:
            for job in await store.interrupted(s):
                entry = HANDLERS.get(job.kind)
                can = entry is not None and job.attempts < MAX_ATTEMPTS and (entry[1] is None or entry[1](job))
                if can:
                    log.warning("job %s was cut off by a restart; running it again", job.id)
                    await store.requeue(s, job.id, "Queued again: the server restarted while this job ran")
                else:
                    why = ("it had already been retried" if job.attempts >= MAX_ATTEMPTS
                           else "its input is no longer available")
                    msg = (f"Interrupted: the server restarted while this job was running and {why}; "
                           "nothing was changed. Please submit it again.")
                    log.warning("job %s: %s", job.id, msg)
                    await store.finish(s, job.id, status=FAILED, msg=msg, result=[msg],
                                       counts=job.counts or {})
                    if entry is not None:
                        await _cleanup(job)

    async def start(self) -> None:
        await self.recover()
        self._loop_task = asyncio.create_task(self._loop(), name="job-runner")
        self.wake()

    async def stop(self) -> None:
        if self._loop_task:
            self._loop_task.cancel()
        for t in list(self._tasks):
            t.cancel()
        for t in [self._loop_task, *self._tasks]:
            if t is not None:
                with contextlib.suppress(BaseException):
                    await t

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), POLL_SECONDS)
            self._wake.clear()
            try:
                await self._dispatch()
            except Exception:  # noqa: BLE001 - keep the runner alive; the next wake retries
                log.exception("job dispatch failed")

    async def _dispatch(self) -> None:
        if len(self._tasks) >= CONCURRENCY:
            return
        async with self.sessions() as s:
            pending = await store.queued(s)
        blocked: set[int | None] = set(self._busy_fs)
        for job_id, fs_id in pending:
            if len(self._tasks) >= CONCURRENCY:
                return
            if fs_id in blocked:
                continue
            blocked.add(fs_id)  # later jobs of this fs wait for this one: arrival order
            async with unit_of_work(self.sessions) as s:
                if not await store.claim(s, job_id):
                    continue
                job = await store.get_job(s, job_id)
            self._busy_fs.add(fs_id)
            task = asyncio.create_task(self._run(job), name=f"job-{job_id}")
            self._tasks.add(task)

    async def _run(self, job: JobView) -> None:
        try:
            entry = HANDLERS.get(job.kind)
            try:
                if entry is None:
                    raise RuntimeError(f"no handler for job kind {job.kind!r}")
                res = await entry[0](JobContext(job, self.engine, self.sessions, self.settings))
            except asyncio.CancelledError:
                raise  # shutdown: the job stays 'started' and is recovered on the next start
            except Exception as exc:  # noqa: BLE001 - a job failure must end as 'failed', never hang
                log.exception("job %s crashed", job.id)
                msg = f"Job failed: {type(exc).__name__}: {exc}"
                res = JobResult(status=FAILED, msg=msg, result=[msg])
            async with unit_of_work(self.sessions) as s:
                await store.finish(s, job.id, status=res.status, msg=res.msg, result=res.result,
                                   counts=res.counts, issues=res.issues)
            await _cleanup(job)
        finally:
            self._busy_fs.discard(job.fs_id)
            self._tasks.discard(asyncio.current_task())  # type: ignore[arg-type]
            self.wake()


async def _cleanup(job: JobView) -> None:
    spool = job.params.get("spool")
    if spool:
        with contextlib.suppress(OSError):
            import os

            os.unlink(spool)


@contextlib.asynccontextmanager
async def job_runner(app: FastAPI) -> AsyncIterator[JobRunner]:
    """Lifespan component: starts the runner (recovering interrupted jobs) and stops it."""
    import fileregistry.vfs.service  # noqa: F401  (registers the upload job handler)

    runner = JobRunner(app.state.engine, app.state.sessions, app.state.settings)
    app.state.job_runner = runner
    await runner.start()
    try:
        yield runner
    finally:
        await runner.stop()
