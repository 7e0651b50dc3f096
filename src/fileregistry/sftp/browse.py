"""Read-only registry queries for people: one connection's files (filtered, searched, sorted,
keyset-paged), a file's history and the scan history.

Paging is by keyset, never OFFSET: a page is ``ORDER BY <sort>, id LIMIT n+1`` after (or before)
the ``(<sort value>, id)`` of the last row shown, so page 1,000 of 100,000 files costs what page 1
does. The id breaks ties, so rows with equal sizes or times never repeat or vanish between pages.
Cursors are opaque URL-safe strings; a malformed one is a 400.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from sqlalchemy import and_, func, literal, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from fileregistry.db import UTCDateTime
from fileregistry.errors import BadRequest, NotFound
from fileregistry.sftp.models import FileEvent, ScanRecord, TrackedFile
from fileregistry.sftp.names import STATES

Sort = Literal["mtime", "size", "name"]
SORTS: tuple[str, ...] = ("mtime", "size", "name")
MAX_PAGE = 500
MAX_SEARCH = 200

_files = TrackedFile.__table__


@dataclass(frozen=True)
class FileRow:
    id: int
    state: str
    name: str
    original_name: str
    size: int
    remote_mtime: datetime | None
    first_seen: datetime
    last_changed: datetime


@dataclass(frozen=True)
class FilePage:
    items: list[FileRow]
    next_cursor: str | None  # the page after this one (further in the sort order)
    prev_cursor: str | None  # the page before this one; None on the first page


@dataclass(frozen=True)
class ScanPage:
    items: list[ScanRecord]
    next_cursor: str | None


def escape_like(text: str) -> str:
    """``text`` as a LIKE literal with ``\\`` as the escape character: ``%`` and ``_`` match themselves."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _encode(value: Any, row_id: int, sort: str = "") -> str:
    if sort == "mtime" or isinstance(value, datetime):
        value = {"t": value.astimezone(UTC).isoformat() if value is not None else None}
    return base64.urlsafe_b64encode(orjson.dumps([value, row_id])).decode().rstrip("=")


def _decode(cursor: str, sort: str) -> tuple[Any, int]:
    try:
        value, row_id = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if sort == "mtime":
            value = None if value["t"] is None else datetime.fromisoformat(value["t"])
            if value is not None and value.tzinfo is None:
                raise ValueError("naive time")
        elif not isinstance(value, {"size": int, "name": str}[sort]):
            raise TypeError("cursor value")
        if not isinstance(row_id, int):
            raise TypeError("cursor id")
    except Exception:  # noqa: BLE001 - any garbage is the client's error
        raise BadRequest("invalid page cursor") from None
    return value, row_id


_COLUMNS = {"mtime": _files.c.remote_mtime, "size": _files.c.size, "name": _files.c.name}


def _sort_value(row: FileRow, sort: str) -> Any:
    return {"mtime": row.remote_mtime, "size": row.size, "name": row.name}[sort]


def _bind(value: Any, sort: str):
    return literal(value, UTCDateTime()) if sort == "mtime" else literal(value)


def _segment(base, sort: str, *, down: bool, nulls: bool, cursor: tuple[Any, int] | None, unique: bool):
    """One ordered run of rows: plain column order (index-friendly: no expression in ORDER BY), then
    the id. ``nulls``: the run of files without a remote mtime, ordered by id alone. ``unique``: the
    sort value alone is unique (a name within one state), so the id is left out of the order."""
    col, idc = _COLUMNS[sort], _files.c.id
    if nulls:
        q = base.where(col.is_(None))
        if cursor is not None:
            q = q.where(idc < cursor[1] if down else idc > cursor[1])
        return q.order_by(idc.desc() if down else idc.asc())
    q = base.where(col.is_not(None)) if sort == "mtime" else base
    if cursor is not None:
        value = _bind(cursor[0], sort)
        if unique:
            q = q.where(col < value if down else col > value)
        else:
            row_key, bound = tuple_(col, idc), tuple_(value, literal(cursor[1]))
            q = q.where(row_key < bound if down else row_key > bound)
    order = [col.desc() if down else col.asc()]
    if not unique:
        order.append(idc.desc() if down else idc.asc())
    return q.order_by(*order)


async def state_counts(session: AsyncSession, key: str) -> dict[str, int]:
    """Files of this connection by state: one GROUP BY over the (connection_key, state) index."""
    rows = await session.execute(
        select(_files.c.state, func.count()).where(_files.c.connection_key == key).group_by(_files.c.state))
    counts = dict.fromkeys(STATES, 0)
    counts.update({state: n for state, n in rows})
    return counts


async def list_files(
    session: AsyncSession,
    key: str,
    *,
    state: str | None = None,
    search: str | None = None,
    sort: str = "mtime",
    descending: bool = True,
    after: str | None = None,
    before: str | None = None,
    limit: int = 100,
) -> FilePage:
    """One page of a connection's files.

    ``state``: one of new/processing/completed/error, or None for all. ``search``: a substring of
    the current or original name, case-insensitive, taken literally (``%`` and ``_`` too).
    ``sort``: ``mtime`` (remote modification time; unknown sorts as oldest), ``size`` or ``name``,
    ties broken by id. ``after``/``before``: a page's ``next_cursor``/``prev_cursor``.
    """
    if sort not in SORTS:
        raise BadRequest(f"sort must be one of {', '.join(SORTS)}")
    if state is not None and state not in STATES:
        raise BadRequest(f"state must be one of {', '.join(STATES)}")
    if after and before:
        raise BadRequest("give either after or before, not both")
    limit = max(1, min(limit, MAX_PAGE))
    base = select(_files.c.id, _files.c.state, _files.c.name, _files.c.original_name, _files.c.size,
                  _files.c.remote_mtime, _files.c.first_seen, _files.c.last_changed).where(
        _files.c.connection_key == key)
    if state is not None:
        base = base.where(_files.c.state == state)
    if search:
        pattern = f"%{escape_like(search[:MAX_SEARCH])}%"
        base = base.where(or_(_files.c.name.ilike(pattern, escape="\\"),
                              _files.c.original_name.ilike(pattern, escape="\\")))
    backwards = before is not None
    cursor_text = before or after
    cursor = _decode(cursor_text, sort) if cursor_text else None
    # Walking backwards (the previous page) is the same query in the opposite order, then reversed.
    down = descending != backwards
    # Files without a remote mtime sort as the oldest: after all others going down, before them going
    # up. They are a run of their own so that each query orders by plain columns an index can serve
    # (a COALESCE in ORDER BY would force a sort of every matching row on every page).
    runs = [False, True] if sort == "mtime" and down else [True, False] if sort == "mtime" else [False]
    if cursor is not None:  # start in the run the cursor is in
        runs = runs[runs.index(sort == "mtime" and cursor[0] is None):]
    unique = sort == "name" and state is not None  # (connection_key, state, name) is unique
    rows: list[FileRow] = []
    for i, nulls in enumerate(runs):
        here = cursor if i == 0 else None
        q = _segment(base, sort, down=down, nulls=nulls, cursor=here, unique=unique)
        rows += [FileRow(*r) for r in (await session.execute(q.limit(limit + 1 - len(rows)))).all()]
        if len(rows) > limit:
            break
    more = len(rows) > limit
    rows = rows[:limit]
    if backwards:
        rows.reverse()
        has_next, has_prev = True, more
    else:
        has_next, has_prev = more, cursor is not None
    first, last = (rows[0], rows[-1]) if rows else (None, None)
    return FilePage(
        items=rows,
        next_cursor=_encode(_sort_value(last, sort), last.id, sort) if has_next and last else None,
        prev_cursor=_encode(_sort_value(first, sort), first.id, sort) if has_prev and first else None,
    )


async def get_file(session: AsyncSession, key: str, file_id: int) -> FileRow:
    row = (await session.execute(
        select(_files.c.id, _files.c.state, _files.c.name, _files.c.original_name, _files.c.size,
               _files.c.remote_mtime, _files.c.first_seen, _files.c.last_changed)
        .where(_files.c.id == file_id, _files.c.connection_key == key))).first()
    if row is None:
        raise NotFound(f"file {file_id} is not tracked in this registry")
    return FileRow(*row)


async def file_history(session: AsyncSession, file_id: int) -> list[FileEvent]:
    """Every state change of one file, oldest first (the first has no from_state: registered)."""
    return list((await session.scalars(
        select(FileEvent).where(FileEvent.file_id == file_id).order_by(FileEvent.at, FileEvent.id))).all())


def _encode_scan(row: ScanRecord) -> str:
    return _encode(row.started_at, row.id)


async def list_scans(session: AsyncSession, key: str, *, after: str | None = None, limit: int = 50) -> ScanPage:
    """Scan history of a connection, newest first, keyset-paged on (started_at, id)."""
    limit = max(1, min(limit, MAX_PAGE))
    q = select(ScanRecord).where(ScanRecord.connection_key == key)
    if after:
        value, row_id = _decode(after, "mtime")
        q = q.where(or_(ScanRecord.started_at < value,
                        and_(ScanRecord.started_at == value, ScanRecord.id < row_id)))
    q = q.order_by(ScanRecord.started_at.desc(), ScanRecord.id.desc()).limit(limit + 1)
    rows = list((await session.scalars(q)).all())
    more = len(rows) > limit
    rows = rows[:limit]
    return ScanPage(items=rows, next_cursor=_encode_scan(rows[-1]) if more and rows else None)
