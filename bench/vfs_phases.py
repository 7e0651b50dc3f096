"""In-process phase timings of the replace (no HTTP): first upload, then re-upload.

    .venv/bin/python bench/vfs_phases.py FIRST.jsonl SECOND.jsonl [--backend sqlite|postgres]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from pathlib import Path

PG_ADMIN = os.environ.get("FILEREGISTRY_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("first")
    ap.add_argument("second")
    ap.add_argument("--backend", default="sqlite")
    a = ap.parse_args()
    import asyncpg
    import sqlalchemy as sa

    from fileregistry.db import create_nullpool_engine
    from fileregistry.migrate import upgrade
    from fileregistry.vfs.bulk import open_bulk
    from fileregistry.vfs.replace import replace_tree

    dbname = None
    if a.backend == "postgres":
        dbname = f"fileregistry_phase_{uuid.uuid4().hex[:8]}"
        c = await asyncpg.connect(PG_ADMIN)
        await c.execute(f'CREATE DATABASE "{dbname}"')
        await c.close()
        url = "postgresql+asyncpg://postgres@127.0.0.1:5432/" + dbname
    else:
        url = f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/x.db"
    engine = create_nullpool_engine(url)
    try:
        await upgrade(engine)
        async with engine.begin() as conn:
            await conn.execute(sa.text("INSERT INTO vfs_filesystems (id, name, delimiter, created_at)"
                                       " VALUES (1, 'b', '/', CURRENT_TIMESTAMP)"))
        for f in (a.first, a.second):
            db = await open_bulk(engine)
            t0 = time.perf_counter()
            out = await replace_tree(db, 1, "/", Path(f))
            await db.close()
            print(f"{a.backend} {Path(f).name}: {time.perf_counter() - t0:.2f}s {out.timings}"
                  f" added={out.counts.added} updated={out.counts.updated} removed={out.counts.removed}"
                  f" implied={out.counts.implied_directories} load={os.getloadavg()[0]:.1f}", flush=True)
    finally:
        await engine.dispose()
        if dbname:
            c = await asyncpg.connect(PG_ADMIN)
            await c.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
            await c.close()


if __name__ == "__main__":
    asyncio.run(main())
