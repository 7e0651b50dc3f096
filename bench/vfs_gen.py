"""Generate N JSON Lines of a realistic file tree in Alation's upload format.

    python bench/vfs_gen.py 1000000 > tree.jsonl
    python bench/vfs_gen.py 1000000 --change-pct 1 > tree2.jsonl   # same tree, 1% of lines changed

The tree: top-level "projects", each with nested directories 2-5 levels deep, ~40 files per
directory, lines grouped by parent directory (as the seed asks). Deterministic per --seed;
``--change-pct`` changes size/mtime of that share of the files (same keys), so a re-upload
updates exactly those rows.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Iterator

import orjson

EXTS = ("csv", "parquet", "json", "log", "txt", "gz", "avro", "orc")
OWNERS = ("hdfs", "etl", "alice", "bob", "svc_ingest")
GROUPS = ("hadoop", "analytics", "etl")


def _ts(r: random.Random) -> str:
    return (f"20{r.randint(15, 24):02d}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d} "
            f"{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:{r.randint(0, 59):02d}")


def lines(n: int, seed: int = 1, change_pct: float = 0.0) -> Iterator[dict]:
    r = random.Random(seed)
    change = random.Random(seed + 1000)
    emitted = 0
    dir_no = 0

    def file_obj(path: str, i: int) -> dict:
        obj = {"path": path, "name": f"part-{i:05d}.{r.choice(EXTS)}", "is_directory": False,
               "size_in_bytes": r.randint(0, 1 << 30), "ts_last_modified": _ts(r), "ts_last_accessed": _ts(r),
               "owner": r.choice(OWNERS), "group": r.choice(GROUPS), "permission_bits": 644}
        if change_pct and change.random() * 100 < change_pct:
            obj["size_in_bytes"] += 1
            obj["ts_last_modified"] = "2025-06-01 00:00:00"
        return obj

    # Breadth: each directory holds ~40 files and ~3 subdirectories, until n lines are out.
    queue = [("/", 0)]
    while emitted < n and queue:
        parent, depth = queue.pop(0)
        subdirs = r.randint(2, 4) if depth < 12 else 0
        for _ in range(subdirs):
            if emitted >= n:
                return
            dir_no += 1
            name = f"dir{dir_no:06d}"
            yield {"path": parent, "name": name, "is_directory": True, "owner": r.choice(OWNERS),
                   "group": r.choice(GROUPS), "permission_bits": 755, "size_in_bytes": 0,
                   "ts_last_modified": _ts(r)}
            emitted += 1
            queue.append((parent.rstrip("/") + "/" + name + "/", depth + 1))
        if parent != "/":
            for i in range(r.randint(20, 60)):
                if emitted >= n:
                    return
                yield file_obj(parent, i)
                emitted += 1


def write(n: int, out, seed: int = 1, change_pct: float = 0.0, sdk_style: bool = False) -> None:
    if sdk_style:
        out.write(b"\n")
    buf = []
    for obj in lines(n, seed, change_pct):
        buf.append(orjson.dumps(obj))
        if len(buf) >= 10000:
            out.write(b"\n".join(buf) + b"\n")
            buf.clear()
    if buf:
        out.write(b"\n".join(buf) + b"\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", type=int)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--change-pct", type=float, default=0.0)
    ap.add_argument("--sdk-style", action="store_true", help="start with a newline, as Alation's SDK does")
    a = ap.parse_args()
    write(a.n, sys.stdout.buffer, a.seed, a.change_pct, a.sdk_style)


if __name__ == "__main__":
    main()
