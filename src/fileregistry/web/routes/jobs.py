"""Upload jobs: the list (newest first) and one job with its counts and line errors."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from fileregistry.errors import NotFound
from fileregistry.web import queries
from fileregistry.web.routing import UIRoute, UIUser, render

router = APIRouter(route_class=UIRoute, include_in_schema=False)

STATUSES = ("running", "successful", "failed")
COUNT_LABELS = (("received", "Lines received"), ("added", "Added"), ("updated", "Updated"),
                ("unchanged", "Unchanged"), ("removed", "Removed"), ("implied_directories", "Implied directories"),
                ("errors", "Errors"), ("warnings", "Warnings"), ("skipped", "Skipped"))


@router.get("/ui/jobs", response_class=Response)
async def jobs(
    request: Request,
    _user: UIUser,
    status: str | None = Query(None, max_length=16),
    fs: int | None = Query(None),
    before: int | None = Query(None, ge=1),
) -> Response:
    status = status if status in STATUSES else None
    rows, older = await queries.list_jobs(request.app.state.sessions, fs_id=fs, status=status, before=before)
    return render(request, "jobs.html", {"jobs": rows, "older": older, "status": status, "fs": fs,
                                         "paged": before is not None, "statuses": STATUSES, "nav": "jobs"})


@router.get("/ui/jobs/{job_id}", response_class=Response)
async def job(
    request: Request,
    job_id: int,
    _user: UIUser,
    severity: str | None = Query(None, max_length=16),
    after: int = Query(0, ge=0),
) -> Response:
    sessions = request.app.state.sessions
    row = await queries.get_job(sessions, job_id)
    if row is None:
        raise NotFound(f"job {job_id} not found")
    severity = severity if severity in ("error", "warning") else None
    issues, next_after, stored = await queries.job_issues(sessions, job_id, severity=severity, after=after)
    return render(request, "job.html", {
        "job": row, "issues": issues, "next_after": next_after, "stored": stored, "severity": severity,
        "paged": after > 0, "count_labels": COUNT_LABELS, "nav": "jobs",
    })
