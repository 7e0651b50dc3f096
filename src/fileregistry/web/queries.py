"""Read queries the UI needs beyond the services' own: job lists and per-file-system summaries.

Keyset paging on ids throughout; no COUNT(*) over big tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa

from fileregistry.db import unit_of_work
from fileregistry.jobs.models import job_errors, jobs
from fileregistry.vfs.models import filesystems

JOB_PAGE = 50
ERROR_PAGE = 200


@dataclass
class JobRow:
    id: int
    kind: str
    status: str
    phase: str
    fs_id: int | None
    fs_name: str | None
    msg: str
    result: list[str]
    counts: dict[str, Any]
    params: dict[str, Any]
    attempts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    @property
    def dry_run(self) -> bool:
        return bool(self.counts.get("dry_run") or self.params.get("dry_run"))


def _job(r) -> JobRow:
    return JobRow(id=r.id, kind=r.kind, status=r.status, phase=r.phase, fs_id=r.fs_id, fs_name=r.fs_name,
                  msg=r.msg, result=orjson.loads(r.result), counts=orjson.loads(r.counts),
                  params=orjson.loads(r.params), attempts=r.attempts, created_at=r.created_at,
                  started_at=r.started_at, finished_at=r.finished_at)


_JOB_COLS = (jobs.c.id, jobs.c.kind, jobs.c.status, jobs.c.phase, jobs.c.fs_id, jobs.c.msg, jobs.c.result,
             jobs.c.counts, jobs.c.params, jobs.c.attempts, jobs.c.created_at, jobs.c.started_at,
             jobs.c.finished_at, filesystems.c.name.label("fs_name"))


async def list_jobs(sessions, *, fs_id: int | None = None, status: str | None = None,
                    before: int | None = None, limit: int = JOB_PAGE) -> tuple[list[JobRow], int | None]:
    """Newest first; returns the page and the ``before`` id of the next (older) page, if any."""
    q = sa.select(*_JOB_COLS).select_from(jobs.outerjoin(filesystems, filesystems.c.id == jobs.c.fs_id))
    if fs_id is not None:
        q = q.where(jobs.c.fs_id == fs_id)
    if status:
        q = q.where(jobs.c.status == status)
    if before is not None:
        q = q.where(jobs.c.id < before)
    q = q.order_by(jobs.c.id.desc()).limit(limit + 1)
    async with unit_of_work(sessions) as s:
        rows = (await s.execute(q)).all()
    page = [_job(r) for r in rows[:limit]]
    return page, (page[-1].id if len(rows) > limit else None)


async def get_job(sessions, job_id: int) -> JobRow | None:
    q = (sa.select(*_JOB_COLS).select_from(jobs.outerjoin(filesystems, filesystems.c.id == jobs.c.fs_id))
         .where(jobs.c.id == job_id))
    async with unit_of_work(sessions) as s:
        row = (await s.execute(q)).first()
    return _job(row) if row is not None else None


async def job_issues(sessions, job_id: int, *, severity: str | None = None, after: int = 0,
                     limit: int = ERROR_PAGE) -> tuple[list[dict[str, Any]], int | None, dict[str, int]]:
    """One page of a job's stored errors/warnings (by id), the next cursor, and stored counts by severity."""
    q = sa.select(job_errors).where(job_errors.c.job_id == job_id, job_errors.c.id > after)
    if severity:
        q = q.where(job_errors.c.severity == severity)
    q = q.order_by(job_errors.c.id).limit(limit + 1)
    counts_q = (sa.select(job_errors.c.severity, sa.func.count()).where(job_errors.c.job_id == job_id)
                .group_by(job_errors.c.severity))
    async with unit_of_work(sessions) as s:
        rows = (await s.execute(q)).all()
        counts = {sev: n for sev, n in (await s.execute(counts_q)).all()}
    items = [{"id": r.id, "severity": r.severity, "line": r.line, "field": r.field, "code": r.code,
              "message": r.message} for r in rows[:limit]]
    return items, (items[-1]["id"] if len(rows) > limit else None), counts


@dataclass
class FileSystemRow:
    id: int
    name: str
    delimiter: str
    created_at: datetime
    last_job: JobRow | None


async def list_filesystems(sessions) -> list[FileSystemRow]:
    """Every file system with its latest upload job (one query each for the two lists)."""
    latest = (sa.select(jobs.c.fs_id, sa.func.max(jobs.c.id).label("job_id"))
              .where(jobs.c.fs_id.is_not(None)).group_by(jobs.c.fs_id).subquery())
    async with unit_of_work(sessions) as s:
        fss = (await s.execute(sa.select(filesystems).order_by(filesystems.c.name))).all()
        job_rows = (await s.execute(
            sa.select(*_JOB_COLS).select_from(
                jobs.join(latest, latest.c.job_id == jobs.c.id)
                .outerjoin(filesystems, filesystems.c.id == jobs.c.fs_id)))).all()
    by_fs = {r.fs_id: _job(r) for r in job_rows}
    return [FileSystemRow(id=f.id, name=f.name, delimiter=f.delimiter, created_at=f.created_at,
                          last_job=by_fs.get(f.id)) for f in fss]
