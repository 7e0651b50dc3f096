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
    await get_fs_row(conn, fs_id)
    # Explicit delete of entries: SQLite only cascades with foreign_keys=ON, and this is clearer.
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
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except Exception:  # noqa: BLE001 - any garbage is a client error
        raise BadRequest("invalid cursor") from None


async def list_children(conn: Conn, fs_id: int, path: str, *, limit: int = 100,
                        cursor: str | None = None) -> dict[str, Any]:
    fs = await get_fs_row(conn, fs_id)
    d = fs.delimiter
    limit = max(1, min(limit, MAX_PAGE))
    parent, name = split_path(d, path or "")
    norm = join_path(d, parent, name)
    if norm:
        is_dir = (await conn.execute(sa.select(entries.c.is_directory).where(
            entries.c.fs_id == fs_id, entries.c.parent_path == parent, entries.c.name == name))).scalar()
        if is_dir is None:
            raise NotFound(f"no entry at {d + norm!r}")
        if not is_dir:
            raise BadRequest(f"{d + norm!r} is a file, not a directory")
    q = sa.select(*_ENTRY_COLS).where(entries.c.fs_id == fs_id, entries.c.parent_path == norm)
    if cursor:
        q = q.where(entries.c.name > _decode_cursor(cursor))
    rows = (await conn.execute(q.order_by(entries.c.name).limit(limit + 1))).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return {"path": d + norm, "items": [entry_body(d, r) for r in rows],
            "next_cursor": _encode_cursor(rows[-1].name) if more else None}


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

    Keyset pages over the unique index, each its own short read, so the stream holds no
    long transaction and bounded memory. (A replace committing mid-export can make the export
    a mix of two versions; export during an upload if you must, but expect that.)
    """
    cols = (entries.c.parent_path, entries.c.name, entries.c.is_directory, entries.c.size_in_bytes,
            entries.c.ts_last_modified, entries.c.ts_last_accessed, entries.c.owner, entries.c.group_name,
            entries.c.permission_bits, entries.c.storage_type)
    last: tuple[str, str] | None = None
    while True:
        q = sa.select(*cols).where(entries.c.fs_id == fs_id, entries.c.implied == sa.false())
        if last is not None:
            q = q.where(sa.tuple_(entries.c.parent_path, entries.c.name) > sa.tuple_(*last))
        q = q.order_by(entries.c.parent_path, entries.c.name).limit(EXPORT_BATCH)
        async with engine.connect() as conn:
            rows = (await conn.execute(q)).all()
        if not rows:
            return
        yield b"".join(to_export_line(d, tuple(r)) for r in rows)
        last = (rows[-1].parent_path, rows[-1].name)
