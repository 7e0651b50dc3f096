"""Every registry query of the SFTP monitor (files, events, scans, known host keys).

Functions take an ``AsyncSession`` and flush at most; the caller owns the unit of work.
Bulk paths use Core statements with a list of parameter sets (one executemany per chunk).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Integer,
    String,
    bindparam,
    cast,
    delete,
    extract,
    func,
    insert,
    literal,
    null,
    select,
    type_coerce,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from fileregistry.db import UTCDateTime, utcnow
from fileregistry.sftp.models import FileEvent, KnownHostKey, ScanRecord, TrackedFile

CHUNK = 1000  # rows per executemany

_files = TrackedFile.__table__
_events = FileEvent.__table__


@dataclass(slots=True)
class Seen:
    id: int
    size: int
    mtime: int | None


def _epoch_seconds(session: AsyncSession):
    """``remote_mtime`` as integer epoch seconds, computed by the database: converting 100,000 rows to
    datetimes in Python (and back) costs more than the rest of a re-scan's registry work."""
    col = _files.c.remote_mtime
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        return cast(func.floor(extract("epoch", col)), BigInteger)
    return cast(func.strftime("%s", type_coerce(col, String)), Integer)  # SQLite stores naive UTC text


async def new_state_index(session: AsyncSession, key: str) -> dict[str, Seen]:
    """name -> (id, size, mtime seconds) of this connection's files in state ``new``: ONE query."""
    rows = await session.execute(
        select(_files.c.id, _files.c.name, _files.c.size, _epoch_seconds(session)).where(
            _files.c.connection_key == key, _files.c.state == "new"
        )
    )
    return {name: Seen(fid, size, mtime) for fid, name, size, mtime in rows}


async def register_new(session: AsyncSession, key: str, files: Sequence[tuple[str, int, datetime | None]]) -> None:
    """Insert ``(name, size, mtime)`` as state ``new``, then their first events, in bulk.

    No RETURNING: SQLAlchemy cannot batch an ordered RETURNING on SQLite (it falls back to one statement
    per row). The events are written by one INSERT ... SELECT over the rows this call stamped with
    ``first_seen = now`` (scans of one connection are serialised, and updates never touch first_seen).
    """
    if not files:
        return
    now = utcnow()
    for i in range(0, len(files), CHUNK):
        await session.execute(
            insert(_files),
            [
                {
                    "connection_key": key,
                    "state": "new",
                    "name": name,
                    "original_name": name,
                    "size": size,
                    "remote_mtime": mtime,
                    "first_seen": now,
                    "last_changed": now,
                }
                for name, size, mtime in files[i : i + CHUNK]
            ],
        )
    fresh = select(
        _files.c.id, null(), literal("new"), null(), _files.c.name, literal(now, UTCDateTime())
    ).where(_files.c.connection_key == key, _files.c.state == "new", _files.c.first_seen == now)
    await session.execute(
        insert(_events).from_select(["file_id", "from_state", "to_state", "from_name", "to_name", "at"], fresh)
    )


async def update_changed(session: AsyncSession, files: Sequence[tuple[int, int, datetime | None]]) -> None:
    """Refresh size and mtime of re-downloaded ``new`` files: ``(id, size, mtime)``."""
    now = utcnow()
    stmt = (
        update(_files)
        .where(_files.c.id == bindparam("b_id"))
        .values(size=bindparam("b_size"), remote_mtime=bindparam("b_mtime"), last_changed=now)
    )
    for i in range(0, len(files), CHUNK):
        await session.execute(
            stmt, [{"b_id": fid, "b_size": size, "b_mtime": mtime} for fid, size, mtime in files[i : i + CHUNK]]
        )


async def unregister_new(session: AsyncSession, ids: Sequence[int]) -> None:
    """Forget tracked files by id, with their events, but only while they are still in state ``new``."""
    for i in range(0, len(ids), CHUNK):
        chunk = list(ids[i : i + CHUNK])
        gone = select(_files.c.id).where(_files.c.id.in_(chunk), _files.c.state == "new")
        await session.execute(delete(_events).where(_events.c.file_id.in_(gone)))
        await session.execute(delete(_files).where(_files.c.id.in_(chunk), _files.c.state == "new"))


async def add_scan(session: AsyncSession, **fields) -> None:
    session.add(ScanRecord(**fields))
    await session.flush()


async def find(session: AsyncSession, key: str, state: str, name: str) -> TrackedFile | None:
    return await session.scalar(
        select(TrackedFile).where(
            TrackedFile.connection_key == key, TrackedFile.state == state, TrackedFile.name == name
        )
    )


async def find_elsewhere(session: AsyncSession, key: str, state: str, name: str) -> TrackedFile | None:
    """The file called ``name`` (now, or originally) in a state other than ``state``; newest first."""
    for col in (TrackedFile.name, TrackedFile.original_name):
        row = await session.scalar(
            select(TrackedFile)
            .where(TrackedFile.connection_key == key, TrackedFile.state != state, col == name)
            .order_by(TrackedFile.last_changed.desc(), TrackedFile.id.desc())
            .limit(1)
        )
        if row is not None:
            return row
    return None


async def name_taken(session: AsyncSession, key: str, state: str, name: str) -> bool:
    return (await find(session, key, state, name)) is not None


async def move(session: AsyncSession, row: TrackedFile, to_state: str, to_name: str) -> None:
    now = utcnow()
    session.add(FileEvent(file_id=row.id, from_state=row.state, to_state=to_state, from_name=row.name,
                          to_name=to_name, at=now))
    row.state, row.name, row.last_changed = to_state, to_name, now
    await session.flush()


async def files(session: AsyncSession, key: str, state: str | None = None) -> list[TrackedFile]:
    stmt = select(TrackedFile).where(TrackedFile.connection_key == key)
    if state is not None:
        stmt = stmt.where(TrackedFile.state == state)
    return list((await session.scalars(stmt.order_by(TrackedFile.state, TrackedFile.name))).all())


async def last_scan_time(session: AsyncSession, key: str) -> datetime | None:
    return await session.scalar(select(func.max(ScanRecord.started_at)).where(ScanRecord.connection_key == key))


async def clear(session: AsyncSession, key: str) -> None:
    """Delete this connection's files, their events and its scan history (nothing else)."""
    ids = select(_files.c.id).where(_files.c.connection_key == key)
    await session.execute(delete(_events).where(_events.c.file_id.in_(ids)))
    await session.execute(delete(_files).where(_files.c.connection_key == key))
    await session.execute(delete(ScanRecord).where(ScanRecord.connection_key == key))


async def events(session: AsyncSession, file_ids: Iterable[int]) -> list[FileEvent]:
    return list((await session.scalars(select(FileEvent).where(FileEvent.file_id.in_(list(file_ids)))
                                        .order_by(FileEvent.id))).all())


# --------------------------------------------------------------------------- known host keys (TOFU)


async def known_host_key(session: AsyncSession, host: str, port: int) -> str | None:
    return await session.scalar(
        select(KnownHostKey.public_key).where(KnownHostKey.host == host, KnownHostKey.port == port)
    )


async def remember_host_key(session: AsyncSession, host: str, port: int, line: str, fp: str) -> str:
    """Store the key for host:port unless one is stored already; return the stored key line."""
    values = {"host": host, "port": port, "public_key": line, "fingerprint": fp, "first_seen": utcnow()}
    dialect = session.bind.dialect.name if session.bind is not None else ""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as upsert
    else:
        from sqlalchemy.dialects.sqlite import insert as upsert
    await session.execute(upsert(KnownHostKey).values(**values).on_conflict_do_nothing())
    return await known_host_key(session, host, port) or line


async def recently_changed(session: AsyncSession, key: str, limit: int) -> list[TrackedFile]:
    """The ``limit`` files of a connection that changed state last, newest first."""
    if limit <= 0:
        return []
    return list(await session.scalars(
        select(TrackedFile).where(TrackedFile.connection_key == key)
        .order_by(TrackedFile.last_changed.desc(), TrackedFile.id.desc()).limit(limit)
    ))
