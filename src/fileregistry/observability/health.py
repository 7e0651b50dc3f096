"""Readiness: the database answers and its schema is at the migrations' head."""

from __future__ import annotations

import asyncio
import functools

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from fileregistry.migrate import current_revision, head_revision

READY_TIMEOUT = 5.0  # seconds per check; a probe must answer well inside a load balancer's timeout


@functools.cache
def _head() -> str | None:
    # Reading the migration scripts costs milliseconds; they do not change under a running process.
    return head_revision()


async def readiness_problem(engine: AsyncEngine) -> str | None:
    """None when ready, else one sentence naming the problem.

    The sentence names an exception class, never its message: a driver's message can carry the
    database URL, user or host.
    """
    try:
        async with asyncio.timeout(READY_TIMEOUT):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        return f"database unreachable: {type(exc).__name__}"
    try:
        async with asyncio.timeout(READY_TIMEOUT):
            current = await current_revision(engine)
    except Exception as exc:  # noqa: BLE001
        return f"schema revision unreadable: {type(exc).__name__}"
    head = _head()
    if current != head:
        return f"schema at revision {current or 'none'}, head is {head}"
    return None
