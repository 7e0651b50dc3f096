"""Upload benchmark against the real server (uvicorn subprocess), SQLite and PostgreSQL.

    .venv/bin/python bench/vfs_upload.py [--lines 1000000] [--backends sqlite,postgres]

For each backend: a fresh data dir (and, for PostgreSQL, a scratch database on
``postgresql://postgres@127.0.0.1:5432/postgres``, dropped afterwards), an admin user and token
made through the service layer, the server started with ``fileregistry serve`` on a free port.
Measures, from POST to ``successful``:

* first upload of N generated lines into an empty file system;
* re-upload of the same tree with 1% of the files changed (counts show only those updated);
* peak RSS of the server process (VmHWM from /proc/<pid>/status);
* p50/p99 of one page of 100 children, over ~1000 requests on one keep-alive connection.

It prints figures; it does not pass or fail.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import vfs_gen  # noqa: E402
from _server import vm_hwm_mb  # noqa: E402

from fileregistry.testing.sshd import free_port  # noqa: E402

PG_ADMIN = os.environ.get("FILEREGISTRY_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
CACHE = Path(tempfile.gettempdir()) / "fileregistry-vfs-bench"


def data_file(n: int, change_pct: float) -> Path:
    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"tree-{n}-{change_pct}.jsonl"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as out:
            vfs_gen.write(n, out, seed=1, change_pct=change_pct, sdk_style=True)
        tmp.rename(path)
    return path



async def pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def prepare(database_url: str) -> str:
    """Migrate and make an admin with an access token (service layer, like the tests)."""
    from fileregistry.auth import tokens, users
    from fileregistry.db import create_nullpool_engine, session_factory, unit_of_work
    from fileregistry.migrate import upgrade

    engine = create_nullpool_engine(database_url)
    try:
        await upgrade(engine)
        async with unit_of_work(session_factory(engine)) as s:
            admin = await users.create_user(s, "bench", is_admin=True)
            tok = await tokens.issue_access_token_for(s, admin, lifetime=timedelta(hours=4))
            return tok.token
    finally:
        await engine.dispose()


def tree_rss_mb(pid: int) -> float:
    """Current RSS of the server plus its child processes (the parse workers)."""
    total = 0
    pids = [pid]
    try:
        pids += [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        pass
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


PEAK_TREE = {"mb": 0.0}


def wait_job(c: httpx.Client, job_id: int, pid: int | None = None) -> dict:
    while True:
        body = c.get("/api/v1/bulk_metadata/job/", params={"id": job_id}).json()
        if pid is not None:
            PEAK_TREE["mb"] = max(PEAK_TREE["mb"], tree_rss_mb(pid))
        if body["status"] != "running":
            return body
        time.sleep(0.05)


def upload(c: httpx.Client, fs_id: int, path: Path, pid: int | None = None) -> tuple[float, dict]:
    t0 = time.perf_counter()
    with open(path, "rb") as f:
        r = c.post(f"/api/v1/bulk_metadata/file_upload/{fs_id}/", content=iter(lambda: f.read(1 << 20), b""),
                   headers={"Content-Type": "application/json"}, timeout=600)
    r.raise_for_status()
    t_post = time.perf_counter() - t0
    job = wait_job(c, r.json()["job"]["id"], pid)
    total = time.perf_counter() - t0
    job["_post_seconds"] = round(t_post, 2)
    return total, job


def children_latency(c: httpx.Client, fs_id: int, n: int = 1000) -> tuple[float, float, str]:
    # Find a directory with at least 100 children: walk down the first directories.
    path = "/"
    for _ in range(6):
        page = c.get(f"/api/v1/filesystem/{fs_id}/children", params={"path": path, "limit": 100}).json()
        if len(page["items"]) >= 100:
            break
        dirs = [e for e in page["items"] if e["is_directory"]]
        if not dirs:
            break
        path = dirs[-1]["full_path"]
    lat = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = c.get(f"/api/v1/filesystem/{fs_id}/children", params={"path": path, "limit": 100})
        lat.append(time.perf_counter() - t0)
        assert r.status_code == 200
    lat.sort()
    return statistics.median(lat) * 1000, lat[int(len(lat) * 0.99) - 1] * 1000, path


def floor_latency(c: httpx.Client, n: int = 1000) -> tuple[float, float]:
    """The same loop on GET /api/v1/filesystem/ (auth + one tiny query): the per-request floor."""
    lat = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = c.get("/api/v1/filesystem/")
        lat.append(time.perf_counter() - t0)
        assert r.status_code == 200
    lat.sort()
    return statistics.median(lat) * 1000, lat[int(len(lat) * 0.99) - 1] * 1000


def run_backend(backend: str, first: Path, second: Path) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix=f"vfs-bench-{backend}-"))
    dbname = None
    if backend == "postgres":
        dbname = f"fileregistry_bench_{uuid.uuid4().hex[:8]}"
        asyncio.run(pg_admin(f'CREATE DATABASE "{dbname}"'))
        url = PG_ADMIN.rsplit("/", 1)[0] + "/" + dbname
    else:
        url = f"sqlite:///{tmp / 'data' / 'fileregistry.db'}"
    from fileregistry.config import to_async_url

    (tmp / "data").mkdir()
    token = asyncio.run(prepare(to_async_url(url)))
    port = free_port()
    env = dict(os.environ, FILEREGISTRY_DATA_DIR=str(tmp / "data"), FILEREGISTRY_DATABASE_URL=url,
               FILEREGISTRY_LOG_LEVEL=os.environ.get("FILEREGISTRY_BENCH_LOG_LEVEL", "WARNING"))
    proc = subprocess.Popen([sys.executable, "-c", "from fileregistry.cli import main; main()", "serve",
                             "--port", str(port)], env=env, cwd=tmp)
    out: dict = {"backend": backend}
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, headers={"TOKEN": token}, timeout=60) as c:
            for _ in range(300):
                try:
                    if c.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            fs_id = c.post("/api/v1/filesystem/", json={"name": "bench"}).json()["id"]
            PEAK_TREE["mb"] = 0.0
            t, job = upload(c, fs_id, first, proc.pid)
            out["first_upload_s"] = round(t, 2)
            out["first_post_s"] = job["_post_seconds"]
            out["first_counts"] = job["counts"]
            out["first_status"] = job["status"]
            out["rss_after_first_mb"] = round(vm_hwm_mb(proc.pid), 1)
            t, job = upload(c, fs_id, second, proc.pid)
            out["reupload_s"] = round(t, 2)
            out["re_post_s"] = job["_post_seconds"]
            out["re_counts"] = job["counts"]
            out["re_status"] = job["status"]
            out["peak_rss_mb"] = round(vm_hwm_mb(proc.pid), 1)
            out["peak_rss_with_parse_workers_mb (sampled)"] = round(PEAK_TREE["mb"], 1)
            p50, p99, path = children_latency(c, fs_id)
            out["children_p50_ms"], out["children_p99_ms"] = round(p50, 2), round(p99, 2)
            out["children_dir"] = path
            p50, p99 = floor_latency(c)
            out["auth_floor_p50_ms"], out["auth_floor_p99_ms"] = round(p50, 2), round(p99, 2)
            out["load"] = round(os.getloadavg()[0], 1)
    finally:
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)
        if dbname:
            asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)'))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description="VFS upload benchmark (prints figures)")
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--backends", default="sqlite,postgres")
    ap.add_argument("--children-only", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    first, second = data_file(a.lines, 0.0), data_file(a.lines, 1.0)
    print(f"data: {first} ({first.stat().st_size / 1e6:.0f} MB), cpus: {os.cpu_count()}, "
          f"load: {os.getloadavg()[0]:.1f}", flush=True)
    for backend in a.backends.split(","):
        res = run_backend(backend, first, second)
        print(f"\n== {backend}")
        for k, v in res.items():
            print(f"  {k}: {v}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
