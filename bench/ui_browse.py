"""Paging a source's registry of 100,000 files, as the web UI does (issue 6: "page through 100k files
quickly"). Prints p50/p99 per page for each sort order and filter, on SQLite and PostgreSQL, timed
in-process around sftp.browse.list_files (the query the page runs).

    .venv/bin/python bench/ui_browse.py [--files 100000] [--backends sqlite,postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

PG_ADMIN = os.environ.get("FILEREGISTRY_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
KEY = "sftp_connection_bench.example_/upload"
STATES = ("new", "processing", "completed", "error")


async def pg_admin(sql: str) -> None:
    import asyncpg

    c = await asyncpg.connect(PG_ADMIN)
    try:
        await c.execute(sql)
    finally:
        await c.close()


async def fill(engine, n: int) -> None:
    from fileregistry.sftp.models import TrackedFile

    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    rows = []
    for i in range(n):
        st = STATES[i % 7 % 4]  # uneven: more new and processing
        rows.append({"connection_key": KEY, "state": st, "name": f"file_{i:06d}.csv",
                     "original_name": f"file_{i:06d}.csv", "size": (i * 7919) % 10_000_000,
                     "remote_mtime": t0 + timedelta(seconds=(i * 104729) % 31_536_000),
                     "first_seen": t0, "last_changed": t0})
    async with engine.begin() as conn:
        for i in range(0, n, 10_000):
            await conn.execute(TrackedFile.__table__.insert(), rows[i:i + 10_000])


async def timed(fn, n: int) -> tuple[float, float]:
    lat = []
    for _ in range(n):
        t0 = time.perf_counter()
        await fn()
        lat.append(time.perf_counter() - t0)
    lat.sort()
    return statistics.median(lat) * 1000, lat[max(0, int(len(lat) * 0.99) - 1)] * 1000


async def run(backend: str, n: int, reps: int) -> None:
    from fileregistry.db import create_nullpool_engine, session_factory
    from fileregistry.migrate import upgrade
    from fileregistry.sftp import browse

    dbname = None
    if backend == "postgres":
        dbname = f"fileregistry_browse_{uuid.uuid4().hex[:8]}"
        await pg_admin(f'CREATE DATABASE "{dbname}"')
        url = "postgresql+asyncpg://" + PG_ADMIN.split("://", 1)[1].rsplit("/", 1)[0] + "/" + dbname
    else:
        url = f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/browse.db"
    engine = create_nullpool_engine(url)
    try:
        await upgrade(engine)
        await fill(engine, n)
        if backend == "postgres":
            async with engine.connect() as c:
                await c.exec_driver_sql("ANALYZE sftp_files")
        sessions = session_factory(engine)
        cases = [
            ("all, newest first", {"sort": "mtime"}),
            ("all, largest first", {"sort": "size"}),
            ("all, by name", {"sort": "name", "descending": False}),
            ("new, newest first", {"state": "new", "sort": "mtime"}),
            ("error, by name", {"state": "error", "sort": "name", "descending": False}),
            ("search 'file_0999'", {"search": "file_0999", "sort": "mtime"}),
        ]
        print(f"== {backend}: {n:,} files of one source, 100 per page, {reps} pages per case "
              f"(first page, then following next_cursor)", flush=True)
        for label, kw in cases:
            async with sessions() as s:
                cursor = [None]

                async def page(kw=kw, s=s, cursor=cursor):
                    p = await browse.list_files(s, KEY, after=cursor[0], limit=100, **kw)
                    cursor[0] = p.next_cursor  # walk forward; wraps to the first page at the end

                p50, p99 = await timed(page, reps)
            print(f"  {label:24s} p50 {p50:6.2f} ms   p99 {p99:6.2f} ms", flush=True)
    finally:
        await engine.dispose()
        if dbname:
            await pg_admin(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--backends", default="sqlite,postgres")
    a = ap.parse_args()
    print(f"cpus {os.cpu_count()}, load {os.getloadavg()[0]:.1f}")
    for b in a.backends.split(","):
        asyncio.run(run(b, a.files, a.reps))


if __name__ == "__main__":
    main()
