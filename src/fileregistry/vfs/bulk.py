"""Raw-driver access for the bulk replace: stdlib ``sqlite3`` or ``asyncpg``.

SQLAlchemy Core costs several microseconds per row; at a million rows that alone would eat the
budget, so the replace talks to the driver directly: ``executemany`` on SQLite (in a worker
thread, which releases the GIL inside SQLite) and ``COPY`` (``copy_records_to_table``) on
PostgreSQL. Everything else in the app uses SQLAlchemy.

SQL is written once with ``?`` placeholders; PostgreSQL gets them renumbered to ``$n``.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from itertools import chain
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

_QMARK = re.compile(r"\?")
MULTI_ROWS = 500


def _pg_sql(sql: str) -> str:
    n = 0

    def repl(_m: re.Match) -> str:
        nonlocal n
        n += 1
        return f"${n}"

    return _QMARK.sub(repl, sql)


class BulkDB:
    dialect: str
    integrity_errors: tuple[type[BaseException], ...] = ()

    async def execute(self, sql: str, args: Sequence[Any] = ()) -> int: ...
    async def fetch(self, sql: str, args: Sequence[Any] = ()) -> list[tuple]: ...
    async def load(self, table: str, columns: Sequence[str], rows: list[tuple]) -> None: ...
    async def begin_stage(self) -> None: ...
    async def begin_write(self) -> None: ...
    async def commit(self) -> None: ...
    async def rollback(self) -> None: ...
    async def close(self) -> None: ...

    async def try_execute(self, sql: str) -> bool:
        """Run a statement that may violate a constraint; False (and no harm done) if it did."""
        raise NotImplementedError

    async def fetchval(self, sql: str, args: Sequence[Any] = ()) -> Any:
        rows = await self.fetch(sql, args)
        return rows[0][0] if rows else None


class SqliteBulk(BulkDB):
    """A private stdlib sqlite3 connection used from worker threads, one call at a time."""

    dialect = "sqlite"
    integrity_errors = (sqlite3.IntegrityError,)

    def __init__(self, path: str) -> None:
        # One dedicated thread owns the connection: every call runs there, one at a time.
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="vfs-sqlite")
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=30000",
                       "cache_size=-16384", "temp.cache_size=-32768"):
            self.conn.execute(f"PRAGMA {pragma}")

    async def _run(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    async def execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        return await self._run(lambda: self.conn.execute(sql, args).rowcount)

    async def fetch(self, sql: str, args: Sequence[Any] = ()) -> list[tuple]:
        return await self._run(lambda: self.conn.execute(sql, args).fetchall())

    async def try_execute(self, sql: str) -> bool:
        try:
            await self.execute(sql)
            return True
        except sqlite3.IntegrityError:
            return False

    async def load(self, table: str, columns: Sequence[str], rows: list[tuple]) -> None:
        await self._run(self._many, table, tuple(columns), rows)

    def _many(self, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
        # Multi-row VALUES: one statement step per MULTI_ROWS rows instead of one per row
        # (measured ~1.3-2x faster than a plain executemany here).
        one = f"({', '.join('?' * len(columns))})"
        head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
        k = max(1, min(MULTI_ROWS, 32000 // len(columns)))
        full = len(rows) // k * k
        if full:
            flat = chain.from_iterable
            # Close each cursor here, in the connection's thread. Handing it back to the event
            # loop let it be freed there later, resetting the cached statement while the next
            # executemany was stepping it in this thread: "bad parameter or other API misuse".
            self.conn.executemany(head + ", ".join([one] * k),
                                  (tuple(flat(rows[i:i + k])) for i in range(0, full, k))).close()
        if full < len(rows):
            self.conn.executemany(head + one, rows[full:]).close()

    async def begin_stage(self) -> None:
        # Staging only touches TEMP tables: no lock on the main database yet.
        await self.execute("BEGIN")

    async def begin_write(self) -> None:
        if self.conn.in_transaction:
            await self.execute("COMMIT")
        await self.execute("BEGIN IMMEDIATE")

    async def commit(self) -> None:
        if self.conn.in_transaction:
            await self.execute("COMMIT")

    async def rollback(self) -> None:
        if self.conn.in_transaction:
            await self.execute("ROLLBACK")

    async def close(self) -> None:
        try:
            await self._run(self.conn.close)
        finally:
            self._thread.shutdown(wait=False)


class PgBulk(BulkDB):
    """An asyncpg connection taken from the engine's pool; one transaction for the whole job."""

    dialect = "postgresql"

    def __init__(self, sa_conn, apg) -> None:
        import asyncpg

        self.integrity_errors = (asyncpg.IntegrityConstraintViolationError,)
        self._sa_conn = sa_conn
        self.conn = apg
        self._tx = None

    @classmethod
    async def open(cls, engine: AsyncEngine) -> PgBulk:
        sa_conn = await engine.connect()
        raw = await sa_conn.get_raw_connection()
        return cls(sa_conn, raw.driver_connection)

    async def execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        status = await self.conn.execute(_pg_sql(sql), *args)
        tail = status.rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    async def fetch(self, sql: str, args: Sequence[Any] = ()) -> list[tuple]:
        return [tuple(r) for r in await self.conn.fetch(_pg_sql(sql), *args)]

    async def try_execute(self, sql: str) -> bool:
        import asyncpg

        try:
            async with self.conn.transaction():  # a savepoint: the failure must not abort the job's tx
                await self.conn.execute(sql)
            return True
        except asyncpg.IntegrityConstraintViolationError:
            return False

    async def load(self, table: str, columns: Sequence[str], rows: list[tuple]) -> None:
        await self.conn.copy_records_to_table(table, records=rows, columns=list(columns))

    async def begin_stage(self) -> None:
        self._tx = self.conn.transaction()
        await self._tx.start()
        # For this transaction only: sorts and hash joins over a million staged rows (unique
        # index build, anti-joins of the diff) in memory instead of many on-disk batches.
        await self.conn.execute("SET LOCAL work_mem = '64MB'; SET LOCAL maintenance_work_mem = '256MB'")

    async def begin_write(self) -> None:
        if self._tx is None:
            await self.begin_stage()

    async def commit(self) -> None:
        if self._tx is not None:
            await self._tx.commit()
            self._tx = None

    async def rollback(self) -> None:
        if self._tx is not None:
            await self._tx.rollback()
            self._tx = None

    async def close(self) -> None:
        try:
            await self.rollback()
        finally:
            await self._sa_conn.close()


async def open_bulk(engine: AsyncEngine) -> BulkDB:
    if engine.dialect.name == "sqlite":
        return SqliteBulk(engine.url.database or "")
    return await PgBulk.open(engine)
