"""Queries on the durable job tables (SQLAlchemy Core)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from fileregistry.db import utcnow
from fileregistry.errors import NotFound
from fileregistry.jobs.models import job_errors, jobs

RUNNING, SUCCESSFUL, FAILED = "running", "successful", "failed"
QUEUED, STARTED, DONE = "queued", "started", "done"
# Column sizes of job_errors (models.py); anything longer is cut, so one hostile upload line
# cannot make the result unwritable (which would leave the job 'running').
FIELD_MAX = CODE_MAX = 64
SEVERITY_MAX = 8
MESSAGE_MAX = 2000
LINE_MAX = 2**63 - 1

Conn = AsyncSession | AsyncConnection


@dataclass
class JobView:
    id: int
    kind: str
    status: str
    msg: str
    result: list[str]
    counts: dict[str, Any]
    fs_id: int | None
    params: dict[str, Any]
    phase: str
    attempts: int

    def status_body(self) -> dict[str, Any]:
        """Alation's job status shape plus our structured counts."""
        return {"id": self.id, "status": self.status, "msg": self.msg, "result": self.result,
                "counts": self.counts}


def _view(row) -> JobView:
    return JobView(id=row.id, kind=row.kind, status=row.status, msg=row.msg, result=orjson.loads(row.result),
                   counts=orjson.loads(row.counts), fs_id=row.fs_id, params=orjson.loads(row.params),
                   phase=row.phase, attempts=row.attempts)


async def create_job(conn: Conn, kind: str, *, fs_id: int | None, params: dict[str, Any],
                     msg: str = "Queued") -> int:
    res = await conn.execute(sa.insert(jobs).values(
        kind=kind, status=RUNNING, phase=QUEUED, fs_id=fs_id, params=orjson.dumps(params).decode(),
        msg=msg, result="[]", counts="{}", attempts=0, created_at=utcnow(),
    ).returning(jobs.c.id))
    return res.scalar_one()


async def get_job(conn: Conn, job_id: int) -> JobView:
    row = (await conn.execute(sa.select(jobs).where(jobs.c.id == job_id))).first()
    if row is None:
        raise NotFound(f"job {job_id} not found", body={"error": f"Cannot find Job id: {job_id}"})
    return _view(row)


async def list_errors(conn: Conn, job_id: int, *, after: int, limit: int) -> list[dict[str, Any]]:
    await get_job(conn, job_id)
    rows = (await conn.execute(
        sa.select(job_errors).where(job_errors.c.job_id == job_id, job_errors.c.id > after)
        .order_by(job_errors.c.id).limit(limit))).all()
    return [{"id": r.id, "severity": r.severity, "line": r.line, "field": r.field, "code": r.code,
             "message": r.message} for r in rows]


async def claim(conn: Conn, job_id: int, owner: str, *, in_order: bool = True) -> bool:
    """queued -> started, leased to ``owner``: one conditional UPDATE, so one runner wins.

    ``in_order``: jobs of one file system run one at a time in arrival order; the job is taken
    only while no other job of its file system is started and none is queued before it."""
    cond = [jobs.c.id == job_id, jobs.c.phase == QUEUED]
    if in_order:
        other = jobs.alias("other")
        cond.append(~sa.exists().where(
            other.c.fs_id == jobs.c.fs_id, other.c.id != jobs.c.id,
            sa.or_(other.c.phase == STARTED, sa.and_(other.c.phase == QUEUED, other.c.id < jobs.c.id))))
    now = utcnow()
    res = await conn.execute(sa.update(jobs).where(*cond).values(
        phase=STARTED, attempts=jobs.c.attempts + 1, started_at=now, msg="Running", owner=owner,
        heartbeat_at=now))
    return res.rowcount == 1


async def heartbeat(conn: Conn, job_ids: list[int], owner: str) -> set[int]:
    """Refresh the lease of these jobs; return the ids this owner still holds."""
    if not job_ids:
        return set()
    rows = await conn.execute(sa.update(jobs).where(jobs.c.id.in_(job_ids), jobs.c.phase == STARTED,
                                                    jobs.c.owner == owner)
                              .values(heartbeat_at=utcnow()).returning(jobs.c.id))
    return {r.id for r in rows}


async def queued(conn: Conn) -> list[tuple[int, int | None]]:
    rows = (await conn.execute(sa.select(jobs.c.id, jobs.c.fs_id).where(jobs.c.phase == QUEUED)
                               .order_by(jobs.c.id))).all()
    return [(r.id, r.fs_id) for r in rows]


async def started(conn: Conn) -> list[tuple[JobView, str | None, Any]]:
    """Every started job with its lease: (job, owner, heartbeat_at)."""
    rows = (await conn.execute(sa.select(jobs).where(jobs.c.phase == STARTED).order_by(jobs.c.id))).all()
    return [(_view(r), r.owner, r.heartbeat_at) for r in rows]


def _lease_is(job_id: int, owner: str | None, heartbeat_at: Any):
    """The job is still started under exactly the lease the caller saw (compare-and-set)."""
    cond = [jobs.c.id == job_id, jobs.c.phase == STARTED]
    cond.append(jobs.c.owner.is_(None) if owner is None else jobs.c.owner == owner)
    beat = jobs.c.heartbeat_at
    cond.append(beat.is_(None) if heartbeat_at is None else beat == heartbeat_at)
    return sa.and_(*cond)


async def requeue(conn: Conn, job_id: int, msg: str, *, owner: str | None = None,
                  heartbeat_at: Any = None) -> bool:
    """Take over a cut-off job (its lease unchanged since seen): queue it again."""
    res = await conn.execute(sa.update(jobs).where(_lease_is(job_id, owner, heartbeat_at)).values(
        phase=QUEUED, msg=msg, owner=None, heartbeat_at=None))
    return res.rowcount == 1


async def release(conn: Conn, owner: str, msg: str) -> int:
    """Queue again the started jobs ``owner`` holds (its runner is stopping)."""
    res = await conn.execute(sa.update(jobs).where(jobs.c.phase == STARTED, jobs.c.owner == owner).values(
        phase=QUEUED, msg=msg, owner=None, heartbeat_at=None))
    return res.rowcount


def _clean(value: Any, limit: int | None) -> Any:
    """Text PostgreSQL accepts (no NUL), within the column size."""
    if value is None:
        return None
    value = str(value).replace("\x00", "\ufffd")
    return value[:limit] if limit else value


def _issue_row(job_id: int, i: dict[str, Any]) -> dict[str, Any]:
    line = i.get("line")
    if line is not None and not (0 <= line <= LINE_MAX):
        line = None
    return {"job_id": job_id, "severity": _clean(i.get("severity") or "error", SEVERITY_MAX), "line": line,
            "field": _clean(i.get("field"), FIELD_MAX), "code": _clean(i.get("code") or "", CODE_MAX),
            "message": _clean(i.get("message") or "", MESSAGE_MAX)}


async def finish(conn: Conn, job_id: int, *, status: str, msg: str, result: list[str],
                 counts: dict[str, Any], issues: list[dict[str, Any]] = (), owner: str | None = None) -> bool:
    """started/queued -> done with its result; with ``owner``, only while that runner holds the
    lease (False if another runner took the job over). Issues are cut to the column sizes."""
    assert status in (SUCCESSFUL, FAILED)
    q = sa.update(jobs).where(jobs.c.id == job_id, jobs.c.phase != DONE)
    if owner is not None:
        q = q.where(jobs.c.owner == owner)
    res = await conn.execute(q.values(
        status=status, phase=DONE, msg=_clean(msg, None),
        result=orjson.dumps([_clean(r, None) for r in result]).decode(),
        counts=orjson.dumps(counts).decode(), finished_at=utcnow(), owner=None, heartbeat_at=None))
    if res.rowcount != 1:
        return False
    if issues:
        await conn.execute(sa.insert(job_errors), [_issue_row(job_id, i) for i in issues])
    return True


async def fail_cut_off(conn: Conn, job_id: int, msg: str, *, owner: str | None, heartbeat_at: Any) -> bool:
    """Take over a cut-off job (its lease unchanged since seen): mark it failed with ``msg``."""
    res = await conn.execute(sa.update(jobs).where(_lease_is(job_id, owner, heartbeat_at)).values(
        status=FAILED, phase=DONE, msg=msg, result=orjson.dumps([msg]).decode(), finished_at=utcnow(),
        owner=None, heartbeat_at=None))
    return res.rowcount == 1
