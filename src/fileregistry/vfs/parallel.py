"""Parse a spooled upload in chunks, off the event loop, pipelined with the database loads.

The spool is cut into byte ranges at line boundaries (:func:`chunk_ranges`, a cheap scan that
also numbers the lines and finds lines longer than :data:`MAX_LINE_BYTES`: those become ranges of
their own that are reported as ``line_too_long`` and never read into memory, so a range that is
parsed holds at most about ``CHUNK_BYTES + MAX_LINE_BYTES``). Each range is parsed by
:func:`parse_chunk`: in a worker *process*
for large uploads (parsing is pure-Python CPU work; threads would fight the loader for the GIL)
and in a thread for small ones (no process start-up cost). Up to ``depth`` chunks are in flight,
so memory stays bounded: a few chunks of row tuples, never the whole upload.
"""

from __future__ import annotations

import asyncio
import io
import multiprocessing
import os
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

from fileregistry.vfs.records import LineError, LineParser

CHUNK_BYTES = 2 << 20
# The longest line accepted, in bytes, not counting its "\n". A longer line is one error
# (``line_too_long``); it is skipped by offset, never read whole. (An upload line is a few hundred
# bytes; this leaves room for very long paths or owner strings.)
MAX_LINE_BYTES = 1 << 20
# Uploads at least this big are parsed in worker processes; smaller ones in a thread (no
# process start-up). Override with FILEREGISTRY_VFS_PARSE_PROCESS_MIN_BYTES ("off" disables).
# Worker processes only pay off once the loader is cheaper than parsing (multi-row INSERTs on
# SQLite, COPY on PostgreSQL): 1M lines then load in ~7-8 s instead of ~12-17 s with a thread.
_ENV = os.environ.get("FILEREGISTRY_VFS_PARSE_PROCESS_MIN_BYTES", "").strip().lower()
PROCESS_MIN_BYTES: int | None = None if _ENV == "off" else int(_ENV) if _ENV else 32 << 20
MAX_WORKERS = 2

# Per worker process: one parser (and its path cache) per delimiter.
_PARSERS: dict[str, LineParser] = {}


class Range(NamedTuple):
    start: int
    end: int
    lineno: int  # physical number of the range's first line
    too_long: bool = False  # one line longer than the limit: report it, do not read it


def chunk_ranges(path: Path, chunk_bytes: int | None = None, max_line: int | None = None) -> Iterator[Range]:
    """Consecutive :class:`Range` s covering the file, each ending at a newline (or EOF).

    Reads ``chunk_bytes`` (default :data:`CHUNK_BYTES`) at a time. A line longer than ``max_line``
    (default :data:`MAX_LINE_BYTES`) becomes a range of its own with ``too_long`` set, so no
    other range holds more than about ``chunk_bytes + max_line`` bytes. Both defaults are read at
    call time. Cost per block: a few ``rfind``/``count`` calls in C, not a step per line: from the
    start of the current line, the last newline within ``max_line + 1`` bytes proves every line
    up to it short enough; only a window without a newline means a long line.
    """
    chunk = chunk_bytes or CHUNK_BYTES
    limit = MAX_LINE_BYTES if max_line is None else max_line
    with open(path, "rb", buffering=0) as f:
        start = cur = pos = 0  # start of the pending range; start of the current line; offset of block
        lineno = 1  # line number at ``start``
        nls = 0  # newlines in [start, cur)
        skipping = False  # inside an over-long line (it starts at ``start``), looking for its end
        while True:
            block = f.read(chunk)
            if not block:
                break
            n = len(block)
            p = cur - pos  # < 0 when the current line began in an earlier block
            if skipping:
                k = block.find(b"\n")
                if k < 0:
                    pos += n
                    continue
                end = pos + k + 1
                yield Range(start, end, lineno, True)
                start = cur = end
                lineno += 1
                skipping = False
                p = k + 1
            while True:
                lo = p if p > 0 else 0
                hi = p + limit + 1  # the current line must have its newline before here
                k = block.rfind(b"\n", lo, hi)
                if k >= 0:
                    nls += block.count(b"\n", lo, k + 1)
                    p = k + 1
                    cur = pos + p
                    continue
                if hi > n:
                    break  # no verdict yet: the rest of the line is in the next block
                # The line at ``cur`` has more than ``limit`` bytes before any newline.
                if cur > start:
                    yield Range(start, cur, lineno)
                    lineno += nls
                    nls = 0
                start = cur
                k = block.find(b"\n", hi)
                if k < 0:
                    skipping = True
                    break
                end = pos + k + 1
                yield Range(start, end, lineno, True)
                start = cur = end
                lineno += 1
                p = k + 1
            pos += n
            if cur > start and not skipping:
                yield Range(start, cur, lineno)
                lineno += nls
                nls = 0
                start = cur
        if skipping:
            yield Range(start, pos, lineno, True)
        elif start < pos:
            yield Range(start, pos, lineno)


def parse_chunk(path: str, delimiter: str, start: int, end: int, lineno: int, first_col: int | None,
                max_kept: int) -> tuple[list[tuple], list[tuple], int, int, int, set[str]]:
    """Parse lines ``[start, end)`` of the spool.

    Returns ``(rows, issues, errors, warnings, received, parents)``; ``issues`` holds at most ``max_kept``
    errors and as many warnings as ``(severity, line, field, code, message)``. With ``first_col``
    set, each row's first column (the line number) is replaced by it (the file system id, for a
    direct load into ``vfs_entries``). ``parents`` is the set of distinct parent paths of the
    valid rows (a few per chunk: lines come grouped by directory).
    """
    parser = _PARSERS.get(delimiter)
    if parser is None:
        parser = _PARSERS[delimiter] = LineParser(delimiter)
    parse = parser.parse
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read(end - start)
    rows: list[tuple] = []
    append = rows.append
    issues: list[tuple] = []
    errors = warns = received = kept_e = kept_w = 0
    warnings: list[LineError] = []
    n = lineno - 1
    for raw in io.BytesIO(data):
        n += 1
        if raw[0] in b"\n\r \t" and not raw.strip():
            continue
        if n == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        received += 1
        try:
            row = parse(raw, n, warnings)
        except LineError as exc:
            errors += 1
            if kept_e < max_kept:
                kept_e += 1
                issues.append(("error", n, exc.field, exc.code, exc.message))
        else:
            append(row if first_col is None else (first_col, *row[1:]))
        if warnings:
            for w in warnings:
                warns += 1
                if kept_w < max_kept:
                    kept_w += 1
                    issues.append(("warning", n, w.field, w.code, w.message))
            warnings.clear()
    parents = {r[1] for r in rows}
    return rows, issues, errors, warns, received, parents


def _executor(size: int) -> tuple[Executor, int]:
    if PROCESS_MIN_BYTES is not None and size >= PROCESS_MIN_BYTES:
        workers = max(1, min(MAX_WORKERS, os.cpu_count() or 1))
        # spawn, not fork: the server process has threads and an event loop.
        return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")), workers
    return ThreadPoolExecutor(1, thread_name_prefix="vfs-parse"), 1


async def parsed_batches(path: Path, delimiter: str, report, counts, *, first_col: int | None = None,
                         progress: Callable[[int], None] | None = None,
                         parents: set[str] | None = None) -> AsyncIterator[list[tuple]]:
    """Yield lists of valid row tuples in file order; errors/warnings go to ``report``; the
    distinct parent paths of the yielded rows are added to ``parents`` if given."""
    loop = asyncio.get_running_loop()
    executor, workers = _executor(path.stat().st_size)
    ranges = chunk_ranges(path)
    limit = MAX_LINE_BYTES
    inflight: deque = deque()
    depth = workers + 1

    def submit() -> bool:
        r = next(ranges, None)
        if r is None:
            return False
        if r.too_long:  # reported in file order when its turn comes; nothing to parse
            fut = loop.create_future()
            fut.set_result(r.lineno)
        else:
            fut = loop.run_in_executor(executor, parse_chunk, str(path), delimiter, r.start, r.end, r.lineno,
                                       first_col, report.max_kept)
        inflight.append((fut, r.end - r.start, r.too_long))
        return True

    try:
        while len(inflight) < depth and submit():
            pass
        while inflight:
            fut, nbytes, too_long = inflight.popleft()
            if too_long:
                lineno = await fut
                submit()
                counts.received += 1
                report.error(lineno, None, "line_too_long",
                             f"line {lineno} is longer than the limit of {limit} bytes")
                if progress:
                    progress(nbytes)
                continue
            rows, issues, errors, warns, received, chunk_parents = await fut
            if parents is not None:
                parents |= chunk_parents
            submit()
            counts.received += received
            report.merge(issues, errors, warns)
            if progress:
                progress(nbytes)
            if rows:
                yield rows
    finally:
        for fut, *_ in inflight:
            fut.cancel()
        await asyncio.gather(*(f for f, *_ in inflight), return_exceptions=True)
        executor.shutdown(wait=False, cancel_futures=True)
