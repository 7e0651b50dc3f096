"""File systems and their entries: create/list/delete, browse (keyset paging) and export.

The replace-by-diff of a whole tree lives in :mod:`fileregistry.vfs.replace` (raw driver, bulk).
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from fileregistry.db import utcnow
from fileregistry.errors import BadRequest, Conflict, InvalidInput, NotFound
from fileregistry.vfs.models import entries, filesystems
from fileregistry.vfs.records import format_timestamp, join_path, split_path, to_export_line

Conn = AsyncSession | AsyncConnection
MAX_PAGE = 1000
EXPORT_BATCH = 5000

_ENTRY_COLS = (entries.c.id, entries.c.parent_path, entries.c.name, entries.c.is_directory,
               entries.c.implied, entries.c.size_in_bytes, entries.c.ts_last_modified,
               entries.c.ts_last_accessed, entries.c.owner, entries.c.group_name,
               entries.c.permission_bits, entries.c.storage_type)


# --------------------------------------------------------------------------- file systems


def fs_body(row) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "delimiter": row.delimiter,
            "created_at": row.created_at.isoformat() if row.created_at else None}


async def create_fs(conn: Conn, name: str, delimiter: str = "/") -> dict[str, Any]:
    name = (name or "").strip()
    if not name:
        raise InvalidInput("name must not be empty")
    if len(delimiter) != 1 or delimiter.isspace():
        raise InvalidInput("delimiter must be exactly one non-blank character")
    try:
        async with conn.begin_nested():
            res = await conn.execute(sa.insert(filesystems).values(
                name=name, delimiter=delimiter, created_at=utcnow()).returning(filesystems))
            row = res.one()
    except IntegrityError:
        raise Conflict(f"a file system named {name!r} already exists") from None
    return fs_body(row)


async def list_fs(conn: Conn) -> list[dict[str, Any]]:
    rows = (await conn.execute(sa.select(filesystems).order_by(filesystems.c.id))).all()
    return [fs_body(r) for r in rows]


async def get_fs_row(conn: Conn, fs_id: int):
    row = (await conn.execute(sa.select(filesystems).where(filesystems.c.id == fs_id))).first()
    if row is None:
        raise NotFound(f"file system {fs_id} not found", body={"error": f"Cannot find FileSystem id: {fs_id}"})
    return row


async def get_fs_for_upload(conn: Conn, fs_id: int):
    """Alation answers an unknown id on the upload URL with 400 and ``{"error": ...}``."""
    row = (await conn.execute(sa.select(filesystems).where(filesystems.c.id == fs_id))).first()
    if row is None:
        raise BadRequest(f"Cannot find FileSystem id: {fs_id}", body={"error": f"Cannot find FileSystem id: {fs_id}"})
    return row


async def get_fs(conn: Conn, fs_id: int) -> dict[str, Any]:
    row = await get_fs_row(conn, fs_id)
    body = fs_body(row)
    body["entry_count"] = (await conn.execute(
        sa.select(sa.func.count()).select_from(entries).where(entries.c.fs_id == fs_id))).scalar_one()
    return body


async def delete_fs(conn: Conn, fs_id: int) -> None:
    # Lock the file system row first (PostgreSQL; SQLite has one writer at a time): a replace
    # holds the same lock while it writes, so no entries can be added behind this delete.
    # Entries have no foreign key (it slowed bulk loads down), hence the explicit delete.
    q = sa.select(filesystems.c.id).where(filesystems.c.id == fs_id)
    if (conn.bind if isinstance(conn, AsyncSession) else conn).dialect.name == "postgresql":
        q = q.with_for_update()
    if (await conn.execute(q)).first() is None:
        await get_fs_row(conn, fs_id)  # raises NotFound
    await conn.execute(sa.delete(entries).where(entries.c.fs_id == fs_id))
    await conn.execute(sa.delete(filesystems).where(filesystems.c.id == fs_id))


# --------------------------------------------------------------------------- browse


def entry_body(delimiter: str, r) -> dict[str, Any]:
    return {
        "id": r.id,
        "path": delimiter + r.parent_path,
        "name": r.name,
        "full_path": delimiter + join_path(delimiter, r.parent_path, r.name),
        "is_directory": bool(r.is_directory),
        "implied": bool(r.implied),
        "size_in_bytes": r.size_in_bytes,
        "ts_last_modified": format_timestamp(r.ts_last_modified),
        "ts_last_accessed": format_timestamp(r.ts_last_accessed),
        "owner": r.owner,
        "group": r.group_name,
        "permission_bits": r.permission_bits,
        "storage_type": r.storage_type,
    }


def _encode_cursor(name: str) -> str:
    return base64.urlsafe_b64encode(name.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        name = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except Exception:  # noqa: BLE001 - any garbage is a client error
        raise BadRequest("invalid cursor") from None
    if "\x00" in name:  # no name holds NUL (PostgreSQL text cannot): not one of our cursors
        raise BadRequest("invalid cursor: it decodes to a name with a NUL character")
    return name


_CHILD_COLS = ("id", "parent_path", "name", "is_directory", "implied", "size_in_bytes", "ts_last_modified",
               "ts_last_accessed", "owner", "group_name", "permission_bits", "storage_type")
# One statement per page: the file system (its delimiter), the directory itself (exists? a
# directory?) and one keyset page of its children from the (fs_id, parent_path, name) index.
_CHILDREN_SQL = sa.text(
    "SELECT f.delimiter, (SELECT p.is_directory FROM vfs_entries p WHERE p.fs_id = f.id"
    " AND p.parent_path = :pparent AND p.name = :pname) AS pdir, "
    + ", ".join(f"c.{c}" for c in _CHILD_COLS)
    + " FROM vfs_filesystems f LEFT JOIN (SELECT " + ", ".join(_CHILD_COLS)
    + " FROM vfs_entries WHERE fs_id = :fs AND parent_path = :dir AND name > :after"
    " ORDER BY name LIMIT :lim) c ON 1 = 1 WHERE f.id = :fs ORDER BY c.name")
# The delimiter a file system was last seen with: a guess that saves a round trip (checked
# against the delimiter the query returns, so a stale guess only costs a second query).
_DELIM_GUESS: dict[int, str] = {}


def _child_body(d: str, r) -> dict[str, Any]:
    # r: delimiter, pdir, then _CHILD_COLS
    parent, name = r[3], r[4]
    return {
        "id": r[2],
        "path": d + parent,
        "name": name,
        "full_path": d + (f"{parent}{d}{name}" if parent else name),
        "is_directory": bool(r[5]),
        "implied": bool(r[6]),
        "size_in_bytes": r[7],
        "ts_last_modified": format_timestamp(r[8]),
        "ts_last_accessed": format_timestamp(r[9]),
        "owner": r[10],
        "group": r[11],
        "permission_bits": r[12],
        "storage_type": r[13],
    }


async def list_children(conn: Conn, fs_id: int, path: str, *, limit: int = 100,
                        cursor: str | None = None) -> dict[str, Any]:
    limit = max(1, min(limit, MAX_PAGE))
    after = _decode_cursor(cursor) if cursor else ""
    d = _DELIM_GUESS.get(fs_id, "/")
    for _attempt in range(2):
        parent, name = split_path(d, path or "")
        norm = join_path(d, parent, name)
        rows = (await conn.execute(_CHILDREN_SQL, {"fs": fs_id, "pparent": parent, "pname": name,
                                                   "dir": norm, "after": after, "lim": limit + 1})).all()
        if not rows:
            _DELIM_GUESS.pop(fs_id, None)
            raise NotFound(f"file system {fs_id} not found",
                           body={"error": f"Cannot find FileSystem id: {fs_id}"})
        actual = rows[0][0]
        if actual == d:
            break
        d = actual  # the guess was wrong: parse the path again with the real delimiter
    _DELIM_GUESS[fs_id] = d
    if norm:
        is_dir = rows[0][1]
        if is_dir is None:
            raise NotFound(f"no entry at {d + norm!r}")
        if not is_dir:
            raise BadRequest(f"{d + norm!r} is a file, not a directory")
    if rows[0][2] is None:  # the LEFT JOIN's empty page
        rows = []
    more = len(rows) > limit
    rows = rows[:limit]
    return {"path": d + norm, "items": [_child_body(d, r) for r in rows],
            "next_cursor": _encode_cursor(rows[-1][4]) if more else None}


async def get_entry(conn: Conn, fs_id: int, path: str) -> dict[str, Any]:
    fs = await get_fs_row(conn, fs_id)
    parent, name = split_path(fs.delimiter, path or "")
    if not name:
        raise BadRequest("path must name an entry (the root is not one)")
    row = (await conn.execute(sa.select(*_ENTRY_COLS).where(
        entries.c.fs_id == fs_id, entries.c.parent_path == parent, entries.c.name == name))).first()
    if row is None:
        raise NotFound(f"no entry at {fs.delimiter + join_path(fs.delimiter, parent, name)!r}")
    return entry_body(fs.delimiter, row)


# --------------------------------------------------------------------------- export


async def open_export(engine: AsyncEngine, fs_id: int) -> AsyncIterator[bytes]:
    """Check the file system now (a 404 before any byte is sent), then stream its lines."""
    async with engine.connect() as conn:
        fs = await get_fs_row(conn, fs_id)
    return export_lines(engine, fs_id, fs.delimiter)


async def export_lines(engine: AsyncEngine, fs_id: int, d: str) -> AsyncIterator[bytes]:
    """The tree as upload lines (implied directories left out: a re-upload implies them again).

    One snapshot for the whole export, so a replace committing meanwhile is either entirely in
    it or not at all: PostgreSQL, one REPEATABLE READ read-only transaction; SQLite, one read
    transaction (WAL keeps its snapshot; writers are not blocked). Inside it, keyset pages over
    the unique index, so memory stays bounded whatever the tree's size.
    """
    cols = (entries.c.parent_path, entries.c.name, entries.c.is_directory, entries.c.size_in_bytes,
            entries.c.ts_last_modified, entries.c.ts_last_accessed, entries.c.owner, entries.c.group_name,
            entries.c.permission_bits, entries.c.storage_type)
    async with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if not sqlite:
            conn = await conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        async with conn.begin():
            if sqlite:  # the driver opens no transaction for a SELECT: take the read snapshot ourselves
                await conn.exec_driver_sql("BEGIN")
            last: tuple[str, str] | None = None
            while True:
                q = sa.select(*cols).where(entries.c.fs_id == fs_id, entries.c.implied == sa.false())
                if last is not None:
                    q = q.where(sa.tuple_(entries.c.parent_path, entries.c.name) > sa.tuple_(*last))
                q = q.order_by(entries.c.parent_path, entries.c.name).limit(EXPORT_BATCH)
                rows = (await conn.execute(q)).all()
                if not rows:
                    return
                yield b"".join(to_export_line(d, tuple(r)) for r in rows)
                last = (rows[-1].parent_path, rows[-1].name)
