"""HTTP routes (vfs). Thin: parse, call one service function, return.

Alation's wire contract: the upload and job paths, field names and response shapes follow
Alation's "Upload Virtual File System" API, so its SDK and the seed's curl/requests samples
work unchanged. The upload path answers with and without its trailing slash (never a
redirect); a doubled leading slash is collapsed by a middleware in ``app.py``.
"""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import StreamingResponse

from fileregistry.auth.deps import AdminUser
from fileregistry.deps import ReadConnDep, SessionDep, SettingsDep
from fileregistry.errors import BadRequest
from fileregistry.jobs import store as jobs_store
from fileregistry.vfs import service, store
from fileregistry.vfs.schemas import (
    NO_NUL,
    ChildrenPage,
    EntryOut,
    FileSystemCreate,
    FileSystemOut,
    JobErrorOut,
    JobStatus,
    UploadAccepted,
)

router = APIRouter(tags=["virtual file systems"])

# Ids are 64-bit signed integers in the database: a larger one can name nothing, and would fail
# in the driver (500) rather than as a client error. Out of range: 422 naming the parameter.
MAX_ID = 2**63 - 1
FsId = Annotated[int, Path(ge=0, le=MAX_ID, description="File system id.")]
JobId = Annotated[int, Path(ge=0, le=MAX_ID, description="Job id.")]


def _json(body, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status_code, media_type="application/json",
                    headers=headers)


# --------------------------------------------------------------------------- file systems


@router.post("/api/v1/filesystem/", status_code=201, response_model=FileSystemOut)
async def create_filesystem(body: FileSystemCreate, session: SessionDep, _admin: AdminUser):
    """Create a virtual file system (admin). Alation has no API for this; we do."""
    return await store.create_fs(session, body.name, body.delimiter)


@router.get("/api/v1/filesystem/", response_model=list[FileSystemOut])
async def list_filesystems(session: SessionDep):
    """List the virtual file systems."""
    return await store.list_fs(session)


@router.get("/api/v1/filesystem/{fs_id}/", response_model=FileSystemOut)
async def get_filesystem(fs_id: FsId, session: SessionDep):
    """One file system, with its entry count."""
    return await store.get_fs(session, fs_id)


@router.delete("/api/v1/filesystem/{fs_id}/", status_code=204)
async def delete_filesystem(fs_id: FsId, session: SessionDep, _admin: AdminUser):
    """Delete a file system and all its entries (admin)."""
    await store.delete_fs(session, fs_id)
    return Response(status_code=204)


# --------------------------------------------------------------------------- upload + jobs


@router.post("/api/v1/bulk_metadata/file_upload/{fs_id}/", response_model=UploadAccepted)
@router.post("/api/v1/bulk_metadata/file_upload/{fs_id}", include_in_schema=False)
async def upload_file_system(
    fs_id: FsId,
    request: Request,
    settings: SettingsDep,
    _admin: AdminUser,
    dry_run: str | None = Query(None, description="true: do all the work, report planned counts, change nothing."),
    on_error: str | None = Query(None, description="fail (default: all or nothing) or skip (apply valid lines)."),
):
    """Replace the whole tree of a file system with a JSON Lines body (admin).

    The body is streamed to disk (any Content-Type, optional ``Content-Encoding: gzip``) and
    processed as a job; poll ``job.url`` (or ``/api/v1/bulk_metadata/job/?id=N``) until the status
    is ``successful`` or ``failed``.
    """
    options = service.parse_options(dry_run, on_error)
    job_id = await service.submit_upload(
        request.app.state.sessions, settings, fs_id, request.stream(),
        content_encoding=request.headers.get("content-encoding"),
        content_length=request.headers.get("content-length"), options=options)
    runner = getattr(request.app.state, "job_runner", None)
    if runner is not None:
        runner.wake()
    return _json(service.job_links(job_id))


@router.get("/api/v1/bulk_metadata/job/", response_model=JobStatus)
@router.get("/api/v1/bulk_metadata/job", include_in_schema=False)
async def bulk_job_status(
    session: SessionDep, id: int = Query(..., ge=0, le=MAX_ID, description="Job id."),  # noqa: A002
):
    """Job status as Alation's SDK polls it: ``status`` is running, successful or failed."""
    return _json((await jobs_store.get_job(session, id)).status_body())


@router.get("/api/job/{job_id}/", response_model=JobStatus)
@router.get("/api/job/{job_id}", include_in_schema=False)
async def job_status(job_id: JobId, session: SessionDep):
    """Job status (the ``job.url`` of an upload response)."""
    return _json((await jobs_store.get_job(session, job_id)).status_body())


@router.get("/api/job_error/", response_model=list[JobErrorOut])
@router.get("/api/job_error", include_in_schema=False)
async def job_errors(
    session: SessionDep,
    job_id: int = Query(..., ge=0, le=MAX_ID),
    limit: int = Query(100, ge=1, le=1000),
    cursor: int = Query(0, ge=0, le=MAX_ID, description="Id of the last error of the previous page."),
):
    """Errors and warnings of a job, oldest first. Each has line, field, code and message.

    Paged: when more remain, the ``X-Next-Page`` header holds the next page's URL.
    """
    items = await jobs_store.list_errors(session, job_id, after=cursor, limit=limit)
    headers = {}
    if len(items) == limit:
        headers["X-Next-Page"] = f"/api/job_error/?job_id={job_id}&limit={limit}&cursor={items[-1]['id']}"
    return _json(items, headers=headers)


# --------------------------------------------------------------------------- browse + export


@router.get("/api/v1/filesystem/{fs_id}/children", response_model=ChildrenPage)
async def list_children(
    fs_id: FsId,
    session: ReadConnDep,
    path: str = Query("/", pattern=NO_NUL, description="Directory path; the root by default."),
    limit: int = Query(100, ge=1, le=store.MAX_PAGE),
    cursor: str | None = Query(None, description="next_cursor of the previous page."),
):
    """One page of a directory's children, ordered by name (keyset paging)."""
    return _json(await store.list_children(session, fs_id, path, limit=limit, cursor=cursor))


@router.get("/api/v1/filesystem/{fs_id}/entry", response_model=EntryOut)
async def get_entry(fs_id: FsId, session: ReadConnDep, path: str = Query(..., pattern=NO_NUL)):
    """One entry by its full path."""
    if not path.strip():
        raise BadRequest("path is required")
    return _json(await store.get_entry(session, fs_id, path))


@router.get("/api/v1/filesystem/{fs_id}/export")
async def export_file_system(fs_id: FsId, request: Request):
    """The current tree as JSON Lines in the upload format (streamed)."""
    lines = await store.open_export(request.app.state.engine, fs_id)
    return StreamingResponse(lines, media_type="application/x-ndjson")
