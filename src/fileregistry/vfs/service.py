"""Use cases of the upload: accept (spool + durable job) and run (the job handler)."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from fileregistry.db import unit_of_work
from fileregistry.errors import BadRequest
from fileregistry.jobs import store as jobs_store
from fileregistry.jobs.runner import JobContext, JobResult, handler
from fileregistry.jobs.store import FAILED, SUCCESSFUL
from fileregistry.vfs import store
from fileregistry.vfs.bulk import open_bulk
from fileregistry.vfs.replace import FileSystemGone, Outcome, replace_tree
from fileregistry.vfs.spool import spool_body, spool_dir

log = logging.getLogger("fileregistry.vfs")
KIND = "vfs_upload"
TRUE = ("1", "true", "yes", "on")


def parse_options(dry_run: str | None, on_error: str | None) -> dict[str, Any]:
    mode = (on_error or "fail").strip().lower()
    if mode not in ("fail", "skip"):
        raise BadRequest("on_error must be 'fail' or 'skip'", body={"error": "on_error must be 'fail' or 'skip'"})
    return {"dry_run": (dry_run or "").strip().lower() in TRUE, "on_error": mode}


def job_links(job_id: int) -> dict[str, Any]:
    return {"job": {"url": f"/api/job/{job_id}/", "errors_url": f"/api/job_error/?job_id={job_id}",
                    "id": job_id}}


async def submit_upload(sessions: async_sessionmaker[AsyncSession], settings, fs_id: int,
                        body: AsyncIterator[bytes], *, content_encoding: str | None,
                        content_length: str | None, options: dict[str, Any]) -> int:
    """Check the file system, stream the body to disk, record a durable job; return its id."""
    async with sessions() as s:
        await store.get_fs_for_upload(s, fs_id)
    path = await spool_body(body, spool_dir(settings), limit=settings.vfs_max_upload_bytes,
                            content_encoding=content_encoding, content_length=content_length)
    try:
        async with unit_of_work(sessions) as s:
            return await jobs_store.create_job(s, KIND, fs_id=fs_id, params={"spool": str(path), **options})
    except BaseException:
        os.unlink(path)
        raise


def _spool_exists(job: jobs_store.JobView) -> bool:
    spool = job.params.get("spool")
    return bool(spool) and os.path.exists(spool)


def summarise(out: Outcome, *, dry_run: bool) -> tuple[str, str, list[str]]:
    c = out.counts
    if out.rejected:
        msg = (f"Upload rejected: {c.errors} error(s) in {c.received} line(s); the file system was not "
               "changed. See errors_url (or upload with ?on_error=skip).")
        return FAILED, msg, [msg]
    n = c.added + c.updated + c.unchanged
    verb = "Dry run: would upload" if dry_run else "Uploaded"
    result = [f"{verb} {n} directories and files."]
    detail = (f"{c.added} added, {c.updated} updated, {c.unchanged} unchanged, {c.removed} removed, "
              f"{c.implied_directories} implied directories")
    result.append(detail + ".")
    if c.errors:
        result.append(f"Skipped {c.errors} invalid line(s); see errors_url.")
    if c.warnings:
        result.append(f"{c.warnings} warning(s); see errors_url.")
    return SUCCESSFUL, f"{verb} {n} directories and files ({detail}).", result


async def run_upload(engine: AsyncEngine, fs_id: int, spool: Path, options: dict[str, Any], *,
                     max_reported: int = 1000, progress: Callable[[int], None] | None = None) -> JobResult:
    async with engine.connect() as conn:
        try:
            fs = await store.get_fs_row(conn, fs_id)
        except Exception:  # noqa: BLE001 - NotFound
            msg = f"Cannot find FileSystem id: {fs_id} (deleted after the upload was accepted)"
            return JobResult(status=FAILED, msg=msg, result=[msg])
    dry_run = bool(options.get("dry_run"))
    db = await open_bulk(engine)
    try:
        out = await replace_tree(db, fs_id, fs.delimiter, spool, dry_run=dry_run,
                                 skip_errors=options.get("on_error") == "skip", max_reported=max_reported,
                                 progress=progress)
    except FileSystemGone:
        msg = f"Cannot find FileSystem id: {fs_id} (deleted while the upload was processed)"
        return JobResult(status=FAILED, msg=msg, result=[msg])
    finally:
        await db.close()
    log.info("vfs upload fs=%s: %s; timings %s", fs_id, out.counts.as_dict(), out.timings)
    status, msg, result = summarise(out, dry_run=dry_run)
    counts = out.counts.as_dict()
    counts["dry_run"] = dry_run
    issues = [{"severity": i.severity, "line": i.line, "field": i.field, "code": i.code, "message": i.message}
              for i in out.report.issues]
    return JobResult(status=status, msg=msg, result=result, counts=counts, issues=issues)


@handler(KIND, rerunnable=_spool_exists)
async def upload_job(ctx: JobContext) -> JobResult:
    job = ctx.job
    res = await run_upload(ctx.engine, job.fs_id, Path(job.params["spool"]), job.params,
                           max_reported=ctx.settings.vfs_max_reported_errors)
    if job.attempts > 1:
        res.msg += " (completed after a server restart interrupted the first attempt)"
    return res
