"""Helpers for the auth tests: run service code against the test app's database."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from fileregistry.db import create_nullpool_engine, session_factory, unit_of_work

T = TypeVar("T")


@pytest.fixture
def db(app, _started_client) -> Callable[[Callable[[AsyncSession], Awaitable[T]]], T]:
    """``db(fn)`` runs ``await fn(session)`` in one committed unit of work on the app's database."""

    def run(fn: Callable[[AsyncSession], Awaitable[Any]]) -> Any:
        async def go() -> Any:
            engine = create_nullpool_engine(app.state.settings.resolved_database_url)
            try:
                async with unit_of_work(session_factory(engine)) as session:
                    return await fn(session)
            finally:
                await engine.dispose()

        return asyncio.run(go())

    return run
