"""FastAPI dependencies shared by every router."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from fileregistry.config import Settings
from fileregistry.db import unit_of_work


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One unit of work per request: commit on success, roll back on error."""
    async with unit_of_work(request.app.state.sessions) as session:
        yield session


async def get_read_conn(request: Request) -> AsyncIterator[AsyncConnection]:
    """A bare autocommit connection for read-only routes: no ORM session, no transaction.
    The browse endpoints are hot (a tree view pages through them), and this halves their overhead."""
    async with request.app.state.read_engine.connect() as conn:
        yield conn


SettingsDep = Annotated[Settings, Depends(get_settings)]
# scope="function": commit before the response is sent, so a client never sees a 2xx for work
# that is not yet committed (or that then fails to commit).
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
ReadConnDep = Annotated[AsyncConnection, Depends(get_read_conn, scope="function")]
