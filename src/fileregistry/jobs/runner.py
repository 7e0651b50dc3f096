"""The job runner: durable jobs from the ``jobs`` table, run in the server process.

* Jobs of one file system (``fs_id``) run one at a time, in arrival (id) order; jobs of
  different file systems may run side by side (up to ``CONCURRENCY``).
* Leases: a started job names its runner (``owner``: host/pid/process token) and the runner
  refreshes ``heartbeat_at`` every ``HEARTBEAT_SECONDS`` (one UPDATE for all its jobs, from the
  event loop; nothing per row). Every runner looks for cut-off jobs on start and every
  ``HEARTBEAT_SECONDS``: a started job whose heartbeat is older than ``LEASE_SECONDS``, or whose
  owner is a process of this host that is gone, is taken over by a compare-and-set UPDATE (so
  only one runner takes it), then queued again once (its work is one database transaction, so
  a cut-off run left nothing behind), or marked ``failed`` with a message saying so if it was
  already retried or its input is gone. Live jobs of another server process are left alone.
* A job whose result cannot be written is marked ``failed`` with a short message instead. No job
  stays ``running`` forever.
* Handlers are registered per job kind with :func:`handler`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import socket
import uuid
from datetime import timedelta
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from fileregistry.db import unit_of_work, utcnow
from fileregistry.jobs import store
from fileregistry.jobs.store import FAILED, JobView

log = logging.getLogger("fileregistry.jobs")

CONCURRENCY = 2
POLL_SECONDS = 2.0
MAX_ATTEMPTS = 2
# A started job whose heartbeat is older than this is taken to be cut off (its process died).
LEASE_SECONDS = 60.0
LOCAL_LEASE_SECONDS = 600.0  # the same, for a job whose process of this host is still running
HEARTBEAT_SECONDS = 10.0
REQUEUED_MSG = "Queued again: the server restarted while this job ran"

_HOST = socket.gethostname()[:60]
_TOKEN = uuid.uuid4().hex[:16]  # one per process: tells this process from an earlier one with its pid


_SEQ = itertools.count(1)


def owner_id() -> str:
    """Who holds a lease: ``host/pid/token.n``: this process, and which of its runners."""
    return f"{_HOST}/{os.getpid()}/{_TOKEN}.{next(_SEQ)}"


def _owner_state(owner: str | None) -> str:
    """``gone``: a process of this host that no longer runs (or no owner); ``alive``: one that runs;
    ``unknown``: another host's, or not ours to tell."""
    if not owner:
        return "gone"
    parts = owner.split("/")
    if len(parts) != 3 or parts[0] != _HOST or not parts[1].isdigit():
        return "unknown"
    pid, token = int(parts[1]), parts[2].split(".")[0]
    if pid == os.getpid():
        # An earlier process with our pid (e.g. pid 1 in a container) is gone; our own token is us.
        return "alive" if token == _TOKEN else "gone"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return "gone"
    except OSError:
        return "unknown"  # exists (another user's) or cannot tell
    return "alive"


def lease_expired(owner: str | None, heartbeat_at, now=None) -> bool:
    """May this started job be taken over? Its process is gone, or its heartbeat is older than the
    lease: ``LEASE_SECONDS``, or ``LOCAL_LEASE_SECONDS`` for a process of this host that still runs
    (on SQLite its heartbeat waits while a long replace holds the write lock; a pid reused by
    another program cannot hold a job for longer than that)."""
    state = _owner_state(owner)
    if heartbeat_at is None or state == "gone":
        return True
    lease = LOCAL_LEASE_SECONDS if state == "alive" else LEASE_SECONDS
    return heartbeat_at < (now or utcnow()) - timedelta(seconds=lease)


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
        self._beat_task: asyncio.Task | None = None
        self._running: dict[int, JobView] = {}
        self.owner = owner_id()

    def wake(self) -> None:
        self._wake.set()

    async def recover(self) -> None:
        """Take over the started jobs whose lease ran out (or whose process is gone)."""
        async with self.sessions() as s:
            found = await store.started(s)
        now = utcnow()
        for job, owner, beat in found:
            if job.id in self._running or not lease_expired(owner, beat, now):
                continue
            entry = HANDLERS.get(job.kind)
            can = entry is not None and job.attempts < MAX_ATTEMPTS and (entry[1] is None or entry[1](job))
            async with unit_of_work(self.sessions) as s:
                if can:
                    took = await store.requeue(s, job.id, REQUEUED_MSG, owner=owner, heartbeat_at=beat)
                    if took:
                        log.warning("job %s was cut off by a restart; running it again", job.id)
                    continue
                why = ("it had already been retried" if job.attempts >= MAX_ATTEMPTS
                       else "its input is no longer available")
                msg = (f"Interrupted: the server restarted while this job was running and {why}; "
                       "nothing was changed. Please submit it again.")
                took = await store.fail_cut_off(s, job.id, msg, owner=owner, heartbeat_at=beat)
            if took:
                log.warning("job %s: %s", job.id, msg)
                if entry is not None:
                    await _cleanup(job)

    async def start(self) -> None:
        await self.recover()
        self._loop_task = asyncio.create_task(self._loop(), name="job-runner")
        self._beat_task = asyncio.create_task(self._beat(), name="job-heartbeat")
        self.wake()

    async def stop(self) -> None:
        for t in (self._loop_task, self._beat_task):
            if t:
                t.cancel()
        for t in list(self._tasks):
            t.cancel()
        for t in [self._loop_task, self._beat_task, *self._tasks]:
            if t is not None:
                with contextlib.suppress(BaseException):
                    await t
        # Hand the jobs cut off by this shutdown back at once (their transactions were rolled
        # back), rather than leave them to the lease: another server may run them now.
        with contextlib.suppress(Exception):
            async with unit_of_work(self.sessions) as s:
                await store.release(s, self.owner, "Queued again: the server stopped while this job ran")

    async def _beat(self) -> None:
        """Refresh the leases of this runner's jobs, then look for cut-off jobs of others."""
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            try:
                ids = list(self._running)
                if ids:
                    async with unit_of_work(self.sessions) as s:
                        held = await store.heartbeat(s, ids, self.owner)
                    for lost in set(ids) - held:
                        if lost in self._running:
                            log.warning("job %s: lease lost (taken over by another runner)", lost)
                await self.recover()
                self.wake()
            except Exception:  # noqa: BLE001 - keep beating; a missed beat is retried
                log.exception("job heartbeat failed")

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
                if not await store.claim(s, job_id, self.owner):
                    continue
                job = await store.get_job(s, job_id)
            self._busy_fs.add(fs_id)
            self._running[job_id] = job
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
            if await self._finish(job, res):
                await _cleanup(job)
        finally:
            self._running.pop(job.id, None)
            self._busy_fs.discard(job.fs_id)
            self._tasks.discard(asyncio.current_task())  # type: ignore[arg-type]
            self.wake()


    async def _finish(self, job: JobView, res: JobResult) -> bool:
        return await end_job(self.sessions, job.id, res, owner=self.owner)


async def end_job(sessions: async_sessionmaker[AsyncSession], job_id: int, res: JobResult, *,
                  owner: str | None) -> bool:
    """Write a job's result; if that fails, mark it failed with a short message (no issues).

    False if the job is no longer ``owner``'s (taken over) or could not be ended at all (then its
    lease runs out and recovery ends it)."""
    try:
        async with unit_of_work(sessions) as s:
            return await store.finish(s, job_id, status=res.status, msg=res.msg, result=res.result,
                                      counts=res.counts, issues=res.issues, owner=owner)
    except Exception as exc:  # noqa: BLE001 - the job must end, whatever the result holds
        log.exception("job %s: its result could not be saved", job_id)
        outcome = ("the work itself was done: " + res.msg[:200]) if res.status != FAILED else \
            "nothing was changed"
        msg = f"Job failed: its report could not be saved ({type(exc).__name__}); {outcome}"
    for delay in (0.0, 1.0, 5.0):
        await asyncio.sleep(delay)
        try:
            async with unit_of_work(sessions) as s:
                return await store.finish(s, job_id, status=FAILED, msg=msg, result=[msg],
                                          counts=res.counts if _plain(res.counts) else {}, owner=owner)
        except Exception:  # noqa: BLE001
            log.exception("job %s: could not mark it failed either", job_id)
    return False


INTERRUPTED_MSG = ("Interrupted: the upload was stopped (Ctrl-C) before it finished; the replace is all or "
                   "nothing, so the file system was not partly changed. Please run it again.")


async def run_here(sessions: async_sessionmaker[AsyncSession], kind: str, fs_id: int | None,
                   params: dict[str, Any], work: Callable[[int], Awaitable[JobResult]]) -> tuple[int, JobResult]:
    """Run a job in *this* process (the CLI), recorded and leased like a server's: create it, claim
    it (out of order: the caller waits for nothing), beat its heartbeat while ``work(job_id)`` runs,
    then end it. An error fails the job; Ctrl-C fails it saying so, then propagates. If the process
    is killed outright, a server takes the job over when its lease runs out."""
    owner = owner_id()
    async with unit_of_work(sessions) as s:
        job_id = await store.create_job(s, kind, fs_id=fs_id, params=params)
        await store.claim(s, job_id, owner, in_order=False)

    async def beat() -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            try:
                async with unit_of_work(sessions) as s:
                    await store.heartbeat(s, [job_id], owner)
            except Exception:  # noqa: BLE001 - a missed beat is retried; the lease is generous
                log.warning("job %s: heartbeat failed", job_id)

    heartbeat = asyncio.create_task(beat())
    stopped: BaseException | None = None
    try:
        res = await work(job_id)
    except Exception as exc:  # noqa: BLE001 - the job must end, whatever happened
        res = JobResult(status=FAILED, msg=f"Job failed: {exc}", result=[f"Job failed: {exc}"])
    except (KeyboardInterrupt, asyncio.CancelledError) as exc:
        stopped = exc
        res = JobResult(status=FAILED, msg=INTERRUPTED_MSG, result=[INTERRUPTED_MSG])
    finally:
        heartbeat.cancel()
    await end_job(sessions, job_id, res, owner=owner)
    if stopped is not None:
        raise stopped
    return job_id, res


def _plain(counts: dict[str, Any]) -> bool:
    try:
        orjson.dumps(counts)
    except TypeError:
        return False
    return True


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
