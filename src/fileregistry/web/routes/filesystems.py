"""File systems: the list, a directory at a time (keyset pages), one entry's metadata."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from fileregistry.db import unit_of_work
from fileregistry.vfs import store
from fileregistry.web import queries
from fileregistry.web.routing import UIRoute, UIUser, render

router = APIRouter(route_class=UIRoute, include_in_schema=False)

PAGE = 100
STORAGE_TYPES = {0: "Standard", 1: "Standard IA", 2: "Reduced Redundancy", 3: "Glacier"}


def crumbs(delimiter: str, path: str) -> list[tuple[str, str]]:
    """``/a/b`` -> ``[("a", "/a"), ("b", "/a/b")]`` (label, full path), the root left out."""
    out: list[tuple[str, str]] = []
    acc = ""
    for part in [p for p in path.split(delimiter) if p]:
        acc = f"{acc}{delimiter}{part}"
        out.append((part, acc))
    return out


def start_cursor(prefix: str) -> str | None:
    """A cursor whose page starts at the first name >= ``prefix`` (children pages are ``name > cursor``)."""
    if not prefix:
        return None
    last = prefix[-1]
    below = prefix[:-1] + (chr(ord(last) - 1) + "\U0010ffff" * 8 if ord(last) > 0 else "")
    return store._encode_cursor(below)


@router.get("/ui/fs", response_class=Response)
async def filesystems(request: Request, _user: UIUser) -> Response:
    rows = await queries.list_filesystems(request.app.state.sessions)
    return render(request, "fs_list.html", {"filesystems": rows, "nav": "fs"})


async def _directory(request: Request, fs_id: int, path: str, after: str | None, start: str | None):
    cursor = start_cursor(start) if start else after
    async with unit_of_work(request.app.state.sessions) as s:
        fs = await store.get_fs_row(s, fs_id)
        page = await store.list_children(s, fs_id, path, limit=PAGE, cursor=cursor)
    return fs, page


@router.get("/ui/fs/{fs_id}", response_class=Response)
async def directory(
    request: Request,
    fs_id: int,
    _user: UIUser,
    path: str = Query("/", max_length=4096),
    after: str | None = Query(None, max_length=8192),
    start: str | None = Query(None, max_length=1024),
) -> Response:
    fs, page = await _directory(request, fs_id, path, after, start)
    jobs, _ = await queries.list_jobs(request.app.state.sessions, fs_id=fs_id, limit=5)
    return render(request, "fs_dir.html", {
        "fs": fs, "page": page, "crumbs": crumbs(fs.delimiter, page["path"]), "path": page["path"],
        "paged": bool(after or start), "start": start or "", "jobs": jobs, "nav": "fs",
    })


@router.get("/ui/fs/{fs_id}/children", response_class=Response)
async def children_fragment(
    request: Request,
    fs_id: int,
    _user: UIUser,
    path: str = Query("/", max_length=4096),
    after: str | None = Query(None, max_length=8192),
    depth: int = Query(1, ge=1, le=64),
) -> Response:
    """Rows of one directory for the lazy tree (inserted by app.js under the expanded row)."""
    fs, page = await _directory(request, fs_id, path, after, None)
    return render(request, "_fs_rows.html", {"fs": fs, "page": page, "depth": depth, "path": page["path"]})


@router.get("/ui/fs/{fs_id}/entry", response_class=Response)
async def entry(request: Request, fs_id: int, _user: UIUser, path: str = Query(..., max_length=4096)) -> Response:
    async with unit_of_work(request.app.state.sessions) as s:
        fs = await store.get_fs_row(s, fs_id)
        item = await store.get_entry(s, fs_id, path)
    return render(request, "fs_entry.html", {
        "fs": fs, "e": item, "crumbs": crumbs(fs.delimiter, item["full_path"]),
        "storage": STORAGE_TYPES.get(item["storage_type"]) if item["storage_type"] is not None else None,
        "nav": "fs",
    })
