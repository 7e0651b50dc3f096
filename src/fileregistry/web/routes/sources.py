"""Stored SFTP sources: the overview, one source's registry (files, a file's history, scans) and,
for admins, "scan now" and the lifecycle moves, through the monitor's use cases."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response

from fileregistry.db import unit_of_work
from fileregistry.errors import BadRequest
from fileregistry.sftp import browse, monitor
from fileregistry.sftp.names import COMPLETED, ERROR, NEW, PROCESSING, STATES
from fileregistry.sources import service
from fileregistry.web.routing import UIAdmin, UIRoute, UIUser, render, run_action
from fileregistry.web.security import safe_next

router = APIRouter(route_class=UIRoute, include_in_schema=False)

PAGE = 100
SORT_LABELS = {"mtime": "Modified", "size": "Size", "name": "Name"}
# The moves a file may make, from its state: (target, button label).
MOVES = {NEW: [(PROCESSING, "Start processing")], PROCESSING: [(COMPLETED, "Mark completed"), (ERROR, "Mark error")]}
TRIGGER = "ui"


async def _summary(request: Request, name: str):
    found = await service.overview(request.app.state.sessions, names=[name])
    if not found:
        raise service.not_found(name)
    return found[0]


@router.get("/ui/sources", response_class=Response)
async def sources(request: Request, _user: UIUser) -> Response:
    rows = await service.overview(request.app.state.sessions)
    rows.sort(key=lambda s: (not s.failing, s.name))  # failing sources first
    totals = {st: sum(s.counts.get(st, 0) for s in rows) for st in STATES}
    return render(request, "sources.html", {"sources": rows, "totals": totals,
                                            "failing": sum(1 for s in rows if s.failing), "nav": "sources"})


@router.get("/ui/sources/{name}", response_class=Response)
async def source_files(
    request: Request,
    name: str,
    _user: UIUser,
    state: str | None = Query(None, max_length=16),
    q: str | None = Query(None, max_length=browse.MAX_SEARCH),
    sort: str = Query("mtime", max_length=8),
    order: str = Query("desc", max_length=4),
    after: str | None = Query(None, max_length=2048),
    before: str | None = Query(None, max_length=2048),
) -> Response:
    src = await _summary(request, name)
    state = state if state in STATES else None
    sort = sort if sort in browse.SORTS else "mtime"
    order = "asc" if order == "asc" else "desc"
    q = (q or "").strip() or None
    async with unit_of_work(request.app.state.sessions) as s:
        page = await browse.list_files(s, src.connection_key, state=state, search=q, sort=sort,
                                       descending=order == "desc", after=after, before=before or None, limit=PAGE)
    return render(request, "source.html", {
        "src": src, "counts": src.counts, "page": page, "state": state, "q": q or "", "sort": sort, "order": order,
        "paged": bool(after or before), "sort_labels": SORT_LABELS, "moves": MOVES, "states": STATES,
        "tab": "files", "nav": "sources",
    })


@router.get("/ui/sources/{name}/scans", response_class=Response)
async def source_scans(request: Request, name: str, _user: UIUser,
                       after: str | None = Query(None, max_length=2048)) -> Response:
    src = await _summary(request, name)
    async with unit_of_work(request.app.state.sessions) as s:
        page = await browse.list_scans(s, src.connection_key, after=after)
    return render(request, "source_scans.html", {"src": src, "counts": src.counts, "page": page, "paged": bool(after),
                                                 "states": STATES, "tab": "scans", "nav": "sources"})


@router.get("/ui/sources/{name}/files/{file_id}", response_class=Response)
async def file_page(request: Request, name: str, file_id: int, _user: UIUser) -> Response:
    src = await _summary(request, name)
    async with unit_of_work(request.app.state.sessions) as s:
        f = await browse.get_file(s, src.connection_key, file_id)
        history = await browse.file_history(s, file_id)
    return render(request, "file.html", {"src": src, "f": f, "history": history, "moves": MOVES.get(f.state, []),
                                         "nav": "sources"})


@router.post("/ui/sources/{name}/scan", response_class=Response)
async def scan_now(request: Request, name: str, _admin: UIAdmin, back: Annotated[str, Form()] = "") -> Response:
    state = request.app.state

    async def go() -> str:
        config = await service.resolve_config(state.sessions, state.cipher, name)
        # wait=False: if the scheduler (or anyone) is scanning this connection, say so at once.
        r = await monitor.scan(config, settings=state.settings, sessions=state.sessions, trigger=TRIGGER,
                               wait=False)
        parts = [f"{r.total_files} listed", f"{len(r.new_files) - len(r.updated_files)} new",
                 f"{len(r.updated_files)} changed", f"{len(r.failed_files)} failed"]
        if r.removed_files:
            parts.append(f"{len(r.removed_files)} gone from the server (unregistered)")
        return f"Scanned {name} in {r.scan_duration:.1f} s: " + ", ".join(parts) + "."

    return await run_action(request, go, safe_next(back, f"/ui/sources/{name}"))


@router.post("/ui/sources/{name}/files/{file_id}/move", response_class=Response)
async def move(
    request: Request,
    name: str,
    file_id: int,
    _admin: UIAdmin,
    to: Annotated[str, Form(max_length=16)],
    confirmed: Annotated[str, Form(max_length=8)] = "",
    back: Annotated[str, Form(max_length=4096)] = "",
) -> Response:
    state = request.app.state
    src = await _summary(request, name)
    async with unit_of_work(state.sessions) as s:
        f = await browse.get_file(s, src.connection_key, file_id)
    back = safe_next(back, f"/ui/sources/{name}/files/{file_id}")
    if confirmed != "yes":  # no script ran the confirmation dialog: ask on a page of its own
        return render(request, "confirm_move.html", {"src": src, "f": f, "to": to, "back": back, "nav": "sources"})

    async def go() -> str:
        allowed = [t for t, _ in MOVES.get(f.state, [])]
        if to not in allowed:
            raise BadRequest(f"{f.name} is {f.state}; it can move to " + (" or ".join(allowed) or "no other state")
                             + f", not {to}.")
        config = await service.resolve_config(state.sessions, state.cipher, name)
        kw = {"settings": state.settings, "sessions": state.sessions}
        if to == PROCESSING:
            r = await monitor.mark_processing(config, f.name, **kw)
            return f"{r.message} It is now {r.new_filename}."
        r2 = await (monitor.mark_completed if to == COMPLETED else monitor.mark_error)(config, f.name, **kw)
        return r2.message + (f" It is now {r2.new_filename}." if r2.new_filename else "")

    return await run_action(request, go, back)
