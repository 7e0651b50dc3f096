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


async def claim(conn: Conn, job_id: int) -> bool:
    """queued -> started (one runner wins)."""
    res = await conn.execute(sa.update(jobs).where(jobs.c.id == job_id, jobs.c.phase == QUEUED).values(
        phase=STARTED, attempts=jobs.c.attempts + 1, started_at=utcnow(), msg="Running"))
    return res.rowcount == 1


async def queued(conn: Conn) -> list[tuple[int, int | None]]:
    rows = (await conn.execute(sa.select(jobs.c.id, jobs.c.fs_id).where(jobs.c.phase == QUEUED)
                               .order_by(jobs.c.id))).all()
    return [(r.id, r.fs_id) for r in rows]


async def interrupted(conn: Conn) -> list[JobView]:
    rows = (await conn.execute(sa.select(jobs).where(jobs.c.phase == STARTED).order_by(jobs.c.id))).all()
    return [_view(r) for r in rows]


async def requeue(conn: Conn, job_id: int, msg: str) -> None:
    await conn.execute(sa.update(jobs).where(jobs.c.id == job_id).values(phase=QUEUED, msg=msg))


async def finish(conn: Conn, job_id: int, *, status: str, msg: str, result: list[str],
                 counts: dict[str, Any], issues: list[dict[str, Any]] = ()) -> None:
    assert status in (SUCCESSFUL, FAILED)
    await conn.execute(sa.update(jobs).where(jobs.c.id == job_id).values(
        status=status, phase=DONE, msg=msg, result=orjson.dumps(result).decode(),
        counts=orjson.dumps(counts).decode(), finished_at=utcnow()))
    if issues:
        await conn.execute(sa.insert(job_errors), [{"job_id": job_id, **i} for i in issues])
