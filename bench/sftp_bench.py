"""SFTP monitor benchmarks (issue 2). Prints figures beside the peer tools' figures from the same run.

    .venv/bin/python bench/sftp_bench.py                  # everything
    .venv/bin/python bench/sftp_bench.py first big        # some sections
    .venv/bin/python bench/sftp_bench.py --files 2000 --big-mib 128 --rescan-files 20000   # quicker

Sections:
  first        first scan of N x 1 KiB files in /new vs lftp mirror --parallel=8, rclone copy, sftp -b get -r
  big          one large file into the mirror vs OpenSSH sftp -c aes128-gcm@openssh.com get (MB/s)
  rescan       re-scan of M already-registered files vs sftp -b ls -l; peak RSS of the scanning process
  transitions  1,000 mark-processing calls over HTTP one by one (median, p99), then 1,000 with 16 clients

Everything runs on this machine: a real OpenSSH sshd on loopback serving a tmpfs tree, downloads into
tmpfs. Our scans run in a fresh child process each (so its peak RSS is its own), on SQLite in tmpfs.
It prints figures; it does not pass or fail.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import _peers  # noqa: E402
import httpx  # noqa: E402
from _server import install_key, run_server, vm_hwm_mb  # noqa: E402

from fileregistry.testing.sshd import SshdServer, run_sshd  # noqa: E402

TMPFS = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())


def fill(dir_: Path, n: int, size: int = 1024) -> None:
    dir_.mkdir(parents=True, exist_ok=True)
    blob = os.urandom(size)
    for i in range(n):
        (dir_ / f"file_{i:06d}.csv").write_bytes(blob)


def big_file(path: Path, mib: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    chunk = os.urandom(1 << 20)
    with open(path, "wb") as f:
        for _ in range(mib):
            f.write(chunk)


# --------------------------------------------------------------------------- our side, in a child process


def child_main(spec: dict) -> None:
    from fileregistry.config import Settings
    from fileregistry.db import create_engine_for, session_factory
    from fileregistry.migrate import upgrade
    from fileregistry.sftp import monitor
    from fileregistry.sftp.schemas import SFTPConfig

    settings = Settings(data_dir=Path(spec["data_dir"]), mirror_dir=Path(spec["mirror_dir"]),
                        sftp_download_concurrency=spec.get("concurrency", 32),
                        **({"sftp_download_processes": spec["processes"]} if spec.get("processes") else {}))
    config = SFTPConfig.model_validate(spec["config"])

    async def run() -> dict:
        engine = create_engine_for(settings.resolved_database_url)
        await upgrade(engine)
        sessions = session_factory(engine)
        rss0 = vm_hwm_mb()
        t0 = time.perf_counter()
        result = await monitor.scan(config, settings=settings, sessions=sessions)
        dt = time.perf_counter() - t0
        await engine.dispose()
        return {"seconds": dt, "new": len(result.new_files), "total": result.total_files,
                "failed": len(result.failed_files), "rss_before_mb": rss0, "peak_rss_mb": vm_hwm_mb()}

    print(json.dumps(asyncio.run(run())))


def our_scan(s: SshdServer, remote_path: Path, work: Path, concurrency: int = 32, processes: int | None = None) -> dict:
    spec = {
        "processes": processes,
        "data_dir": str(work / "data"),
        "mirror_dir": str(work / "mirror"),
        "concurrency": concurrency,
        "config": {"host": s.host, "port": s.port, "username": s.username,
                   "key_path": install_key(s.user_key_path, work / "data"),
                   "remote_path": str(remote_path), "host_key": s.host_pubkey_line},
    }
    # The key dir in the environment too: the download helper processes read it from there.
    env = dict(os.environ, FILEREGISTRY_SFTP_KEY_DIR=str(work / "data" / "keys"))
    r = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True,
                       env=env)
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-3000:])
    return json.loads(r.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- sections


def section_first(s: SshdServer, base: Path, n: int) -> None:
    lz = s.root / "first"
    fill(lz / "new", n)
    out = base / "out-first"
    print(f"\n== first scan: {n:,} files of 1 KiB in /new (download into tmpfs)")
    peers = {
        "lftp mirror --parallel=8": lambda: _peers.lftp_mirror(s, str(lz / "new"), out / "lftp"),
        "rclone copy": lambda: _peers.rclone_copy(s, str(lz / "new"), out / "rclone"),
        "sftp -b get -r": lambda: _peers.sftp_get_r(s, str(lz / "new"), out / "sftp"),
    }
    times = {}
    for name, fn in peers.items():
        t = fn()
        if t is not None:
            times[name] = t
            print(f"  {name:<28} {t:7.2f} s   {n / t:8.0f} files/s")
    shutil.rmtree(out, ignore_errors=True)
    best = min(times.values())
    for label, procs in (("fileregistry scan", None), ("  same, 2 processes", 2)):
        work = base / "ours-first"
        r = our_scan(s, lz, work, processes=procs)
        assert r["new"] == n and r["failed"] == 0, r
        print(f"  {label:<28} {r['seconds']:7.2f} s   {n / r['seconds']:8.0f} files/s"
              f"   peak RSS {r['peak_rss_mb']:.0f} MB   ratio to the fastest peer {r['seconds'] / best:.2f} x"
              "   (goal <= 0.80 x)")
        shutil.rmtree(work, ignore_errors=True)


def section_big(s: SshdServer, base: Path, mib: int) -> None:
    lz = s.root / "big"
    big_file(lz / "new" / "big.bin", mib)
    size_mb = mib * 1048576 / 1e6
    print(f"\n== one {mib} MiB file into the mirror")
    t_peer = _peers.sftp_get_one(s, str(lz / "new" / "big.bin"), base / "out-big")
    print(f"  {'sftp -c aes128-gcm get':<28} {t_peer:7.2f} s   {size_mb / t_peer:8.0f} MB/s")
    shutil.rmtree(base / "out-big", ignore_errors=True)
    work = base / "ours-big"
    r = our_scan(s, lz, work)
    assert r["new"] == 1, r
    print(f"  {'fileregistry scan':<28} {r['seconds']:7.2f} s   {size_mb / r['seconds']:8.0f} MB/s"
          f"   peak RSS {r['peak_rss_mb']:.0f} MB")
    print(f"  throughput ratio: {t_peer / r['seconds']:.2f} x   (goal >= 1.0 x)")
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(lz, ignore_errors=True)


def section_rescan(s: SshdServer, base: Path, m: int) -> None:
    lz = s.root / "rescan"
    fill(lz / "new", m, size=16)
    print(f"\n== re-scan: {m:,} already-registered files in /new")
    work = base / "ours-rescan"
    first = our_scan(s, lz, work, concurrency=64)
    assert first["new"] == m, first
    print(f"  (registration scan: {first['seconds']:.1f} s)")
    t_ls = min(_peers.sftp_ls_l(s, str(lz / "new")) for _ in range(3))
    print(f"  {'sftp -b ls -l (best of 3)':<28} {t_ls:7.2f} s")
    runs = [our_scan(s, lz, work) for _ in range(3)]
    for r in runs:
        assert r["new"] == 0 and r["total"] == m, r
    best = min(runs, key=lambda r: r["seconds"])
    print(f"  {'fileregistry re-scan (best of 3)':<28} {best['seconds']:7.2f} s"
          f"   peak RSS {best['peak_rss_mb']:.0f} MB (at start {best['rss_before_mb']:.0f} MB)")
    print(f"  ratio to sftp ls -l: {best['seconds'] / t_ls:.2f} x   (limit 1.0 x, goal <= 0.75 x)")
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(lz, ignore_errors=True)


def section_transitions(s: SshdServer, base: Path, n: int = 1000, clients: int = 16) -> None:
    lz = s.root / "transitions"
    fill(lz / "new", 2 * n, size=64)
    data_dir = base / "server-data"
    cfg = {"host": s.host, "port": s.port, "username": s.username,
           "key_path": install_key(s.user_key_path, data_dir), "remote_path": str(lz), "host_key": s.host_pubkey_line}
    print(f"\n== transitions over HTTP: {n} mark-processing one by one, then {n} with {clients} clients")
    with run_server(data_dir) as srv:
        h = {"TOKEN": srv.token}
        with httpx.Client(base_url=srv.url, headers=h, timeout=60) as c:
            r = c.post("/sftp/scan", json=cfg)
            r.raise_for_status()
            names = sorted(f["path"] for f in r.json()["new_files"])
            assert len(names) == 2 * n
            lat = []
            for name in names[:n]:
                t0 = time.perf_counter()
                r = c.post(f"/sftp/mark-processing/{name}", json=cfg)
                lat.append(time.perf_counter() - t0)
                r.raise_for_status()
        lat.sort()
        p99 = lat[int(len(lat) * 0.99) - 1]
        print(f"  sequential: median {statistics.median(lat) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms")

        rest = names[n:]

        def one(client: httpx.Client, name: str) -> None:
            client.post(f"/sftp/mark-processing/{name}", json=cfg).raise_for_status()

        pool_clients = [httpx.Client(base_url=srv.url, headers=h, timeout=60) for _ in range(clients)]
        t0 = time.perf_counter()
        with ThreadPoolExecutor(clients) as ex:
            list(ex.map(lambda i: one(pool_clients[i % clients], rest[i]), range(len(rest))))
        dt = time.perf_counter() - t0
        for pc in pool_clients:
            pc.close()
        print(f"  {clients} concurrent clients: {len(rest) / dt:.0f} transitions/s ({dt:.2f} s for {len(rest)})"
              f"; server peak RSS {srv.peak_rss_mb():.0f} MB")
    shutil.rmtree(lz, ignore_errors=True)


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child_main(json.loads(sys.argv[2]))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sections", nargs="*", default=["first", "big", "rescan", "transitions"])
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--big-mib", type=int, default=1024)
    ap.add_argument("--rescan-files", type=int, default=100_000)
    ap.add_argument("--transitions", type=int, default=1000)
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="fr-bench-", dir=TMPFS))
    try:
        with run_sshd(base / "sshd") as s:
            print(f"OpenSSH sshd on {s.host}:{s.port}, tree and downloads on {TMPFS} ({os.cpu_count()} cores)")
            if "first" in args.sections:
                section_first(s, base, args.files)
            if "big" in args.sections:
                section_big(s, base, args.big_mib)
            if "rescan" in args.sections:
                section_rescan(s, base, args.rescan_files)
            if "transitions" in args.sections:
                section_transitions(s, base, args.transitions)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
