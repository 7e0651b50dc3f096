"""Chunked parsing (vfs.parallel): chunk boundaries, line numbers, and the worker-process mode."""

from __future__ import annotations

import asyncio
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import orjson
import pytest

from fileregistry.vfs import parallel
from fileregistry.vfs.parallel import Range, chunk_ranges, parse_chunk, parsed_batches
from fileregistry.vfs.records import LineError, LineParser
from fileregistry.vfs.replace import Counts, Report


def _body(n: int) -> bytes:
    out = [b'\xef\xbb\xbf{"path": "/", "name": "first", "is_directory": true}\n', b"\n"]  # BOM, then blank
    for i in range(n):
        if i % 7 == 3:
            out.append(b"  \r\n")  # blank lines are skipped but keep their line numbers
        if i % 11 == 5:
            out.append(b'{"path": "/a", "name": "bad", "is_directory": "yes"}\n')
            continue
        obj = {"path": f"/d{i % 5}", "name": f"f{i}", "is_directory": False, "size_in_bytes": i,
               "ts_last_modified": "2020-01-02 03:04:05"}
        if i % 13 == 0:
            obj["extra"] = 1  # a warning
        out.append(orjson.dumps(obj) + b"\r\n")
    out.append(b'{"path": "/", "name": "last", "is_directory": true}')  # no final newline
    return b"".join(out)


def _reference(path: Path, max_line: int | None = None) -> tuple[list[tuple], list[tuple]]:
    """The plain line-by-line loop: what any chunking must reproduce."""
    parser = LineParser("/")
    rows, issues, warnings = [], [], []
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            if max_line is not None and len(raw.removesuffix(b"\n")) > max_line:
                msg = f"line {n} is longer than the limit of {max_line} bytes"
                issues.append(("error", n, None, "line_too_long", msg))
                continue
            if not raw.strip():
                continue
            if n == 1:
                raw = raw.removeprefix(b"\xef\xbb\xbf")
            try:
                rows.append(parser.parse(raw, n, warnings))
            except LineError as exc:
                issues.append(("error", n, exc.field, exc.code, exc.message))
            for w in warnings:
                issues.append(("warning", n, w.field, w.code, w.message))
            warnings.clear()
    return rows, issues


def test_chunks_reproduce_line_by_line_parse(tmp_path: Path) -> None:
    path = tmp_path / "body.jsonl"
    path.write_bytes(_body(500))
    ref_rows, ref_issues = _reference(path)
    for chunk_bytes in (1, 7, 100, 4096, 1 << 20):
        rows, issues, received = [], [], 0
        ranges = list(chunk_ranges(path, chunk_bytes))
        assert ranges[0][0] == 0 and ranges[-1][1] == path.stat().st_size
        assert not any(r.too_long for r in ranges)
        assert all(a.end == b.start for a, b in zip(ranges, ranges[1:]))
        for start, end, lineno, _too_long in ranges:
            r, i, _e, _w, n, _p = parse_chunk(str(path), "/", start, end, lineno, None, 10_000)
            assert _p == {row[1] for row in r}
            rows += r
            issues += i
            received += n
        assert rows == ref_rows, chunk_bytes
        assert issues == ref_issues, chunk_bytes
        assert received == len(ref_rows) + sum(1 for i in ref_issues if i[0] == "error")


def test_first_col_replaces_line_number(tmp_path: Path) -> None:
    path = tmp_path / "body.jsonl"
    path.write_bytes(b'{"path": "/", "name": "a", "is_directory": true}\n')
    rows = parse_chunk(str(path), "/", 0, path.stat().st_size, 1, 42, 10)[0]
    assert rows[0][0] == 42 and rows[0][2] == "a"


def test_chunk_size_is_read_at_call_time(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "body.jsonl"
    path.write_bytes(_body(300))
    assert len(list(chunk_ranges(path))) == 2  # all complete lines, then the one without a newline
    monkeypatch.setattr(parallel, "CHUNK_BYTES", 1000)
    assert len(list(chunk_ranges(path))) > 10


@pytest.mark.parametrize("max_kept", [5, 100_000])
def test_worker_processes_and_error_cap(tmp_path: Path, monkeypatch, max_kept) -> None:
    """Worker processes over many chunks: rows, line numbers of errors and warnings and the counts
    are those of the line-by-line loop, also for lines right at chunk boundaries."""
    path = tmp_path / "body.jsonl"
    path.write_bytes(_body(3000))
    ref_rows, ref_issues = _reference(path)
    monkeypatch.setattr(parallel, "PROCESS_MIN_BYTES", 0)
    monkeypatch.setattr(parallel, "CHUNK_BYTES", 8192)
    used: list[Range] = []
    executors: list[object] = []
    real_ranges, real_executor = parallel.chunk_ranges, parallel._executor

    def spy_ranges(*a, **kw):
        for r in real_ranges(*a, **kw):
            used.append(r)
            yield r

    def spy_executor(size):
        ex = real_executor(size)
        executors.append(ex[0])
        return ex

    monkeypatch.setattr(parallel, "chunk_ranges", spy_ranges)
    monkeypatch.setattr(parallel, "_executor", spy_executor)

    async def run() -> tuple[list[tuple], Report, Counts]:
        report, counts, rows = Report(max_kept=max_kept), Counts(), []
        async for batch in parsed_batches(path, "/", report, counts):
            rows += batch
        return rows, report, counts

    rows, report, counts = asyncio.run(run())
    assert len(executors) == 1 and isinstance(executors[0], ProcessPoolExecutor)
    assert len(used) >= 10 and max(r.end - r.start for r in used) <= 8192 + 200  # a chunk + a carried line
    assert rows == ref_rows
    n_err = sum(1 for i in ref_issues if i[0] == "error")
    assert report.errors == n_err and report.warnings == len(ref_issues) - n_err
    assert counts.received == len(ref_rows) + n_err
    got = [(i.severity, i.line, i.field, i.code, i.message) for i in report.issues]
    if max_kept > len(ref_issues):
        assert got == ref_issues  # every error and warning, with its physical line number
        # the errors lie in at least 10 different chunks
        firsts = [r.lineno for r in used]
        err_lines = [i[1] for i in ref_issues if i[0] == "error"]
        assert len({sum(1 for f in firsts if f <= n) for n in err_lines}) >= 10
    else:
        assert [i for i in got if i[0] == "error"] == [i for i in ref_issues if i[0] == "error"][:max_kept]


def _long_body() -> bytes:
    lines = [b'{"path": "/", "name": "a", "is_directory": true}']
    for i in range(60):
        if i % 9 == 4:
            lines.append(b'{"path": "/", "name": "' + b"L" * (60 + i * 7) + b'", "is_directory": true}')
        elif i % 9 == 7:
            lines.append(b" " * (i * 5))  # long blank lines too
        elif i % 13 == 6:
            head, tail = b'{"path": "/", "name": "', b'", "is_directory": false}'
            lines.append(head + b"x" * (120 - len(head) - len(tail)) + tail)  # exactly the limit: fine
        else:
            lines.append(orjson.dumps({"path": "/a", "name": f"n{i}", "is_directory": False}))
    lines.append(b"y" * 500)  # no final newline, too long
    return b"\n".join(lines)


@pytest.mark.parametrize("chunk_bytes", [1, 7, 64, 121, 300, 4096])
def test_long_lines_are_ranges_of_their_own(tmp_path: Path, chunk_bytes) -> None:
    limit = 120
    path = tmp_path / "body.jsonl"
    path.write_bytes(_long_body())
    lines = path.read_bytes().split(b"\n")
    assert sum(len(x) == limit for x in lines) >= 2 and sum(len(x) == limit + 1 for x in lines) == 0
    ranges = list(chunk_ranges(path, chunk_bytes, limit))
    assert ranges[0].start == 0 and ranges[-1].end == path.stat().st_size
    assert all(a.end == b.start for a, b in zip(ranges, ranges[1:]))
    long_ranges = [(r.lineno, r.end - r.start) for r in ranges if r.too_long]
    want = [(n, len(x) + (n < len(lines))) for n, x in enumerate(lines, 1) if len(x) > limit]
    assert long_ranges == want and len(want) > 5
    # A parsed range never holds a long line, and never much more than a chunk.
    assert all(r.end - r.start <= chunk_bytes + limit + 1 for r in ranges if not r.too_long)
    lineno = 1
    for r in ranges:
        assert r.lineno == lineno
        lineno += path.read_bytes()[r.start:r.end].count(b"\n")


@pytest.mark.parametrize("chunk_bytes", [7, 100, 1 << 20])
def test_long_lines_reported_in_order_and_never_read(tmp_path: Path, monkeypatch, chunk_bytes) -> None:
    limit = 120
    path = tmp_path / "body.jsonl"
    path.write_bytes(_long_body())
    ref_rows, ref_issues = _reference(path, limit)
    monkeypatch.setattr(parallel, "MAX_LINE_BYTES", limit)
    monkeypatch.setattr(parallel, "CHUNK_BYTES", chunk_bytes)
    monkeypatch.setattr(parallel, "PROCESS_MIN_BYTES", None)  # a thread: the spy below sees every read
    reads: list[int] = []
    real_parse = parallel.parse_chunk

    def spy_parse(path_, delim, start, end, *rest):
        reads.append(end - start)
        return real_parse(path_, delim, start, end, *rest)

    monkeypatch.setattr(parallel, "parse_chunk", spy_parse)

    async def run():
        report, counts, rows = Report(max_kept=1000), Counts(), []
        async for batch in parsed_batches(path, "/", report, counts):
            rows += batch
        return rows, report, counts

    rows, report, counts = asyncio.run(run())
    assert rows == ref_rows
    assert [(i.severity, i.line, i.field, i.code, i.message) for i in report.issues] == ref_issues
    assert counts.received == len(ref_rows) + sum(1 for i in ref_issues if i[0] == "error")
    assert max(reads) <= chunk_bytes + limit + 1
