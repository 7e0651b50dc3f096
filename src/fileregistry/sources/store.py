"""Queries of the source tables (the only place that knows their SQL)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from fileregistry.sftp.models import ScanRecord, TrackedFile
from fileregistry.sources.models import Source


async def get(s: AsyncSession, name: str, *, for_update: bool = False) -> Source | None:
    stmt = select(Source).where(Source.name == name)
    if for_update:
        stmt = stmt.with_for_update()
    return await s.scalar(stmt)


async def all_sources(s: AsyncSession, names: list[str] | None = None) -> list[Source]:
    stmt = select(Source).order_by(Source.name)
    if names is not None:
        stmt = stmt.where(Source.name.in_(names))
    return list(await s.scalars(stmt))


async def remove(s: AsyncSession, name: str) -> bool:
    res = await s.execute(delete(Source).where(Source.name == name))
    return res.rowcount == 1


async def name_for_key(s: AsyncSession, key: str) -> str | None:
    return await s.scalar(select(Source.name).where(Source.connection_key == key).order_by(Source.name).limit(1))


async def counts_by_key(s: AsyncSession, keys: list[str]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {k: {} for k in keys}
    if not keys:
        return out
    rows = await s.execute(
        select(TrackedFile.connection_key, TrackedFile.state, func.count())
        .where(TrackedFile.connection_key.in_(keys))
        .group_by(TrackedFile.connection_key, TrackedFile.state)
    )
    for key, state, n in rows:
        out[key][state] = n
    return out


async def oldest_new_by_key(s: AsyncSession, keys: list[str]) -> dict[str, datetime]:
    if not keys:
        return {}
    rows = await s.execute(
        select(TrackedFile.connection_key, func.min(TrackedFile.first_seen))
        .where(TrackedFile.connection_key.in_(keys), TrackedFile.state == "new")
        .group_by(TrackedFile.connection_key)
    )
    return {k: v for k, v in rows}  # func.min keeps the column's type: aware UTC datetimes


async def last_scan(s: AsyncSession, key: str) -> ScanRecord | None:
    return await s.scalar(
        select(ScanRecord).where(ScanRecord.connection_key == key)
        .order_by(ScanRecord.started_at.desc(), ScanRecord.id.desc()).limit(1)
    )


# ----------------------------------------------------------------------------- scheduler


async def due(s: AsyncSession, now: datetime) -> list[tuple[str, datetime | None]]:
    rows = await s.execute(
        select(Source.name, Source.next_scan_at)
        .where(Source.scan_interval_seconds.is_not(None))
        .where((Source.next_scan_at.is_(None)) | (Source.next_scan_at <= now))
        .order_by(Source.next_scan_at)
    )
    return [(n, t) for n, t in rows]


async def claim(s: AsyncSession, name: str, seen: datetime | None, until: datetime) -> bool:
    """Move ``next_scan_at`` from ``seen`` to ``until``; True for the one process whose update won."""
    cond = Source.next_scan_at.is_(None) if seen is None else Source.next_scan_at == seen
    res = await s.execute(update(Source).where(Source.name == name, cond).values(next_scan_at=until))
    return res.rowcount == 1


async def set_outcome(s: AsyncSession, name: str, *, next_scan_at: datetime, failures: int,
                      error: str | None) -> None:
    await s.execute(update(Source).where(Source.name == name).values(
        next_scan_at=next_scan_at, consecutive_failures=failures, last_error=error))
