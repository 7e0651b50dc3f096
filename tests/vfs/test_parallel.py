"""Chunked parsing (vfs.parallel): chunk boundaries, line numbers, and the worker-process mode."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson

from fileregistry.vfs import parallel
from fileregistry.vfs.parallel import chunk_ranges, parse_chunk, parsed_batches
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


def _reference(path: Path) -> tuple[list[tuple], list[tuple]]:
    """The plain line-by-line loop: what any chunking must reproduce."""
    parser = LineParser("/")
    rows, issues, warnings = [], [], []
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
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
        for start, end, lineno in ranges:
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


def test_worker_processes_and_error_cap(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "body.jsonl"
    path.write_bytes(_body(3000))
    ref_rows, ref_issues = _reference(path)
    monkeypatch.setattr(parallel, "PROCESS_MIN_BYTES", 0)
    monkeypatch.setattr(parallel, "CHUNK_BYTES", 8192)

    async def run() -> tuple[list[tuple], Report, Counts]:
        report, counts, rows = Report(max_kept=5), Counts(), []
        async for batch in parsed_batches(path, "/", report, counts):
            rows += batch
        return rows, report, counts

    rows, report, counts = asyncio.run(run())
    assert rows == ref_rows
    n_err = sum(1 for i in ref_issues if i[0] == "error")
    assert report.errors == n_err and report.warnings == len(ref_issues) - n_err
    assert len([i for i in report.issues if i.severity == "error"]) == 5
    assert [i.line for i in report.issues if i.severity == "error"] == \
        [i[1] for i in ref_issues if i[0] == "error"][:5]
    assert counts.received == len(ref_rows) + n_err
