"""The aggregate queries behind the scrape-time gauges of /metrics. Read only, one GROUP BY each."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from fileregistry.jobs.models import jobs
from fileregistry.sftp.models import TrackedFile
from fileregistry.sftp.names import NEW

# Stored sources (migration 0004). Only the two columns we read, as a light table clause, so this
# module does not depend on the sources package's models.
_sources = sa.table("sftp_sources", sa.column("name", sa.String), sa.column("connection_key", sa.String))


@dataclass
class Snapshot:
    """What the gauges show, read in one transaction."""

    files: dict[tuple[str, str], int] = field(default_factory=dict)  # (connection_key, state) -> count
    oldest_new: dict[str, datetime] = field(default_factory=dict)  # connection_key -> min(first_seen)
    source_names: dict[str, str] = field(default_factory=dict)  # connection_key -> stored source name
    jobs: dict[tuple[str, str], int] = field(default_factory=dict)  # (kind, status) -> count


async def snapshot(session: AsyncSession) -> Snapshot:
    snap = Snapshot()
    f = TrackedFile
    rows = await session.execute(
        sa.select(f.connection_key, f.state, sa.func.count()).group_by(f.connection_key, f.state)
    )
    snap.files = {(key, state): n for key, state, n in rows}
    oldest = await session.execute(
        sa.select(f.connection_key, sa.func.min(f.first_seen)).where(f.state == NEW).group_by(f.connection_key)
    )
    snap.oldest_new = {key: first for key, first in oldest if first is not None}
    # Two stored sources may watch the same host and path (other users); the first name wins.
    names = await session.execute(
        sa.select(_sources.c.connection_key, sa.func.min(_sources.c.name)).group_by(_sources.c.connection_key)
    )
    snap.source_names = {key: name for key, name in names}
    rows = await session.execute(
        sa.select(jobs.c.kind, jobs.c.status, sa.func.count()).group_by(jobs.c.kind, jobs.c.status)
    )
    snap.jobs = {(kind, status): n for kind, status, n in rows}
    return snap
