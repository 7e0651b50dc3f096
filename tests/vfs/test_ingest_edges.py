"""Edge cases of the ingestion path, over real HTTP on SQLite and PostgreSQL: multi-member gzip,
BIGINT and timestamp bounds, over-long lines, duplicate / parent-is-file counting and capping, and
all-or-nothing onto an existing tree."""

from __future__ import annotations

import asyncio
import gzip
from pathlib import Path

import orjson
import pytest

from fileregistry.errors import BadRequest, PayloadTooLarge
from fileregistry.vfs import bulk, parallel
from fileregistry.vfs.spool import spool_body
from tests.vfs.conftest import SEED_BODY, item, jsonl

GZ = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
BIG = 2**63 - 1
MAX_LINE_BYTES = getattr(parallel, "MAX_LINE_BYTES", 1 << 20)


def snapshot(vfs, client, fs: int) -> tuple:
    """Everything a reader can see: ids, paths, flags (tree), every column (export), entry count."""
    tree = vfs.tree(fs)
    full = [client.get(f"/api/v1/filesystem/{fs}/entry", params={"path": t[1]}).json() for t in tree]
    return tree, full, vfs.export(fs), client.get(f"/api/v1/filesystem/{fs}/").json()["entry_count"]


# --------------------------------------------------------------------------- 1. gzip members


def test_gzip_concatenated_members_are_all_decoded(vfs, client):
    fs = vfs.create()
    extra = jsonl(*[item("/var/log/", f"f{i}.log", size_in_bytes=i) for i in range(50)])
    assert vfs.run(fs, SEED_BODY.encode() + extra)["status"] == "successful"
    before = snapshot(vfs, client, fs)
    # The same tree as three gzip members (what `cat a.gz b.gz` or a multi-part compressor produce),
    # with gzip's allowed zero padding after the last one.
    seed = SEED_BODY.encode()
    body = gzip.compress(seed[:100]) + gzip.compress(seed[100:] + extra[:500]) + gzip.compress(extra[500:])
    job = vfs.run(fs, body + b"\0" * 16, headers=GZ)
    assert job["status"] == "successful", job
    c = job["counts"]
    assert (c["received"], c["unchanged"], c["added"], c["removed"]) == (53, 53, 0, 0)
    assert snapshot(vfs, client, fs) == before


def test_gzip_members_larger_than_one_decompress_call(vfs):
    """Members whose output exceeds the 1 MiB per-call bound, the boundary mid-stream."""
    fs = vfs.create()
    a = jsonl(*[item("/a/", f"{i:06d}", size_in_bytes=i, owner="x" * 100) for i in range(12_000)])
    b = jsonl(*[item("/b/", f"{i:06d}", size_in_bytes=i, owner="y" * 100) for i in range(12_000)])
    assert len(a) > 1 << 20 and len(b) > 1 << 20
    job = vfs.run(fs, gzip.compress(a) + gzip.compress(b), headers=GZ)
    assert job["status"] == "successful", job
    assert job["counts"]["added"] == 24_002  # + the implied /a and /b


@pytest.mark.parametrize(("tail", "words"), [
    (b"garbage after the member", "trailing data"),
    (b"\0\0\0junk", "trailing data"),
    (b"\x1f\x8b" + b"\x08\x00" + b"\0" * 6 + b"not deflate at all", "invalid gzip"),
    ("truncated-second", "truncated"),
    ("truncated-first", "truncated"),
], ids=["garbage", "zero-padding-then-junk", "member-with-bad-deflate", "truncated-second", "truncated-first"])
def test_gzip_bad_trailing_data_or_truncation_is_400_and_changes_nothing(vfs, client, tail, words):
    fs = vfs.create()
    assert vfs.run(fs, SEED_BODY)["status"] == "successful"
    before = snapshot(vfs, client, fs)
    one = gzip.compress(b'{"path": "/", "name": "only", "is_directory": true}\n')
    if tail == "truncated-second":
        body = one + gzip.compress(b'{"path": "/", "name": "two", "is_directory": true}\n')[:-4]
    elif tail == "truncated-first":
        body = one[:-3]
    else:
        body = one + tail
    r = vfs.upload(fs, body, headers=GZ)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert "gzip" in err.lower() and words in err.lower(), err
    assert "garbage" not in err and "junk" not in err  # the body is never echoed
    assert snapshot(vfs, client, fs) == before


def test_spool_decodes_members_split_across_tiny_chunks(tmp_path: Path):
    """The member boundary, the next header and the zero padding can arrive in any pieces."""
    data = [b"x" * 3000, b"", b"hello\n" * 500, b"z"]
    body = b"".join(gzip.compress(d) for d in data) + b"\0\0"

    async def chunks(size: int):
        for i in range(0, len(body), size):
            yield body[i:i + size]

    for size in (1, 2, 3, 17, 4096):
        path = asyncio.run(spool_body(chunks(size), tmp_path, limit=1 << 30, content_encoding="gzip"))
        assert path.read_bytes() == b"".join(data), size
        path.unlink()

    bad = body + b"\x1f"  # half a gzip header at the very end: truncated

    async def bad_chunks():
        for i in range(0, len(bad), 5):
            yield bad[i:i + 5]

    with pytest.raises(BadRequest) as ei:
        asyncio.run(spool_body(bad_chunks(), tmp_path, limit=1 << 30, content_encoding="gzip"))
    assert "truncated" in ei.value.body["error"]
    assert list(tmp_path.iterdir()) == []  # the spool file is removed


def test_gzip_multi_member_output_counts_against_the_limit(tmp_path: Path):
    body = gzip.compress(b"a" * 600) + gzip.compress(b"b" * 600)

    async def one():
        yield body

    with pytest.raises(PayloadTooLarge):
        asyncio.run(spool_body(one(), tmp_path, limit=1000, content_encoding="gzip"))
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- 2./3. bounds


def test_bigint_and_timestamp_bounds_in_skip_mode_name_line_and_field(vfs, client):
    fs = vfs.create()
    body = jsonl(
        item("/", "max", size_in_bytes=BIG, ts_last_modified="0001-01-01 00:00:00",
             ts_last_accessed="9999-12-31T23:59:59.999Z"),
        item("/", "over", size_in_bytes=BIG + 1),
        item("/", "u64", size_in_bytes=2**64 - 1),
        item("/", "early", ts_last_modified="0001-01-01T00:00:00+01:00"),
        item("/", "late", ts_last_accessed="9999-12-31T23:59:59-01:00"),
        item("/", "edge", ts_last_modified="0001-01-01T00:59:59-01:00"),  # 01:59:59 UTC: fine
    )
    job = vfs.run(fs, body, params="?on_error=skip")
    assert job["status"] == "successful", job
    assert (job["counts"]["errors"], job["counts"]["added"]) == (4, 2)
    errs = sorted((e["line"], e["field"], e["code"]) for e in vfs.errors(job["id"]))
    assert errs == [(2, "size_in_bytes", "invalid_value"), (3, "size_in_bytes", "invalid_value"),
                    (4, "ts_last_modified", "invalid_timestamp"), (5, "ts_last_accessed", "invalid_timestamp")]
    assert all(str(BIG) in e["message"] for e in vfs.errors(job["id"]) if e["field"] == "size_in_bytes")
    assert all("9999" in e["message"] for e in vfs.errors(job["id"]) if e["code"] == "invalid_timestamp")
    e = client.get(f"/api/v1/filesystem/{fs}/entry", params={"path": "/max"}).json()
    assert (e["size_in_bytes"], e["ts_last_modified"], e["ts_last_accessed"]) == \
        (BIG, "0001-01-01 00:00:00", "9999-12-31 23:59:59")
    # the extremes export as valid lines: an export re-uploads unchanged
    again = vfs.run(fs, vfs.export(fs))
    assert again["status"] == "successful", (again, vfs.errors(again["id"]))
    c = again["counts"]
    assert (c["added"], c["updated"], c["removed"], c["unchanged"]) == (0, 0, 0, 2)


# --------------------------------------------------------------------------- 4. long lines


def test_over_long_lines_are_line_errors_and_numbering_continues(vfs, client):
    fs = vfs.create()
    ok = orjson.dumps(item("/", "ok", True)) + b"\n"
    # exactly MAX_LINE_BYTES before the newline: allowed
    pad = b'{"path": "/", "name": "fits", "is_directory": false, "owner": ""}'
    fits = pad[:-2] + b"o" * (MAX_LINE_BYTES - len(pad)) + pad[-2:]
    assert len(fits) == MAX_LINE_BYTES
    over_by_one = fits[:-2] + b'o"}'
    huge = b'{"path": "/", "name": "huge", "owner": "' + b"h" * (3 * MAX_LINE_BYTES + 12345) + b'"}'
    body = (b"\n" + ok                                   # lines 1-2
            + fits + b"\n"                               # 3
            + over_by_one + b"\r\n"                      # 4
            + jsonl(item("/ok", "a"))                    # 5
            + huge + b"\n"                               # 6: longer than a parse chunk
            + b'{"path": "/ok", "name": 7, "is_directory": true}\n'  # 7: a normal error
            + b"   \n"                                   # 8 blank
            + jsonl(item("/ok", "b"))                    # 9
            + b"x" * (MAX_LINE_BYTES + 1))               # 10: no final newline
    before = vfs.tree(fs)
    job = vfs.run(fs, body)
    assert job["status"] == "failed" and vfs.tree(fs) == before
    errs = vfs.errors(job["id"])
    assert [(e["line"], e["code"]) for e in errs] == \
        [(4, "line_too_long"), (6, "line_too_long"), (7, "invalid_type"), (10, "line_too_long")]
    for e in errs[:2] + errs[3:]:
        assert f"line {e['line']}" in e["message"] and str(MAX_LINE_BYTES) in e["message"]
        assert e["field"] is None and len(e["message"]) < 200  # the line is not echoed
    job = vfs.run(fs, body, params="?on_error=skip")
    assert job["status"] == "successful"
    c = job["counts"]
    assert (c["received"], c["errors"], c["skipped"], c["added"]) == (8, 4, 4, 4)
    assert [t[1] for t in vfs.tree(fs)] == ["/fits", "/ok", "/ok/a", "/ok/b"]
    assert len(client.get(f"/api/v1/filesystem/{fs}/entry", params={"path": "/fits"}).json()["owner"]) > 1 << 19


# --------------------------------------------------------------------------- 5./6. counts and caps


@pytest.fixture
def fetch_sizes(monkeypatch) -> list[tuple[str, int]]:
    """Every SELECT the bulk replace fetches, with how many rows came back."""
    seen: list[tuple[str, int]] = []
    for cls in (bulk.SqliteBulk, bulk.PgBulk):
        orig = cls.fetch

        async def fetch(self, sql, args=(), _orig=orig):
            rows = await _orig(self, sql, args)
            seen.append((sql, len(rows)))
            return rows

        monkeypatch.setattr(cls, "fetch", fetch)
    return seen


@pytest.mark.parametrize("existing", [False, True], ids=["empty-fs", "existing-tree"])
def test_duplicates_all_counted_few_fetched(vfs, settings, fetch_sizes, existing):
    settings.vfs_max_reported_errors = 7
    fs = vfs.create()
    if existing:
        assert vfs.run(fs, SEED_BODY)["status"] == "successful"
    n = 300
    body = jsonl(*[item("/d/", f"f{i}", size_in_bytes=1) for i in range(n)],
                 *[item("/d/", f"f{i}", size_in_bytes=2) for i in range(n)],
                 *[item("/d/", f"f{i}", size_in_bytes=3) for i in range(n // 2)])
    fetch_sizes.clear()
    job = vfs.run(fs, body, params="?on_error=skip")
    assert job["status"] == "successful"
    c = job["counts"]
    assert (c["errors"], c["skipped"], c["added"]) == (n + n // 2, n + n // 2, n + 1)
    errs = vfs.errors(job["id"])
    assert [e["line"] for e in errs] == list(range(n + 1, n + 8))
    assert all(e["code"] == "duplicate_entry" for e in errs)
    assert max(k for _sql, k in fetch_sizes) <= 7  # nothing fetches every duplicate


def test_parent_is_file_counts_every_descendant(vfs, settings, fetch_sizes):
    settings.vfs_max_reported_errors = 5
    fs = vfs.create()
    n = 40
    body = jsonl(item("/", "f"), item("/", "g"),
                 *[item("/f/", f"c{i}") for i in range(n)],
                 *[item(f"/g/s{i}/", "x") for i in range(n)],
                 item("/", "ok", True))
    job = vfs.run(fs, body)
    assert job["status"] == "failed"
    assert job["counts"]["errors"] == 2 * n
    assert len(vfs.errors(job["id"])) == 5
    job = vfs.run(fs, body, params="?on_error=skip")
    assert job["status"] == "successful"
    c = job["counts"]
    assert (c["errors"], c["skipped"], c["added"], c["implied_directories"]) == (2 * n, 2 * n, 3, 0)
    assert [t[1] for t in vfs.tree(fs)] == ["/f", "/g", "/ok"]
    assert max(k for sql, k in fetch_sizes if "FROM vfs_stage WHERE" in sql) <= 5


def test_parent_is_file_nested_files_report_each_line_once(vfs):
    fs = vfs.create()
    body = jsonl(item("/", "f"), item("/f/", "sub"), item("/f/sub/", "x"), item("/f/sub/x/", "y", True))
    job = vfs.run(fs, body)
    assert job["status"] == "failed"
    errs = vfs.errors(job["id"])
    assert [e["line"] for e in errs] == [2, 3, 4] and job["counts"]["errors"] == 3
    assert all(e["code"] == "parent_is_file" and "'/f'" in e["message"] for e in errs)


# --------------------------------------------------------------------------- all or nothing, skip, dry run


EXISTING = jsonl(
    item("/", "top", True, owner="root", group="wheel", permission_bits=755, ts_last_modified="2020-01-01 00:00:00"),
    item("/top", "a.txt", size_in_bytes=11, owner="u1", ts_last_accessed="2021-02-03 04:05:06", storage_type=2),
    item("/top", "file", size_in_bytes=5),
    item("/top/sub/", "deep.txt", size_in_bytes=99, permission_bits=644),  # /top/sub implied
)


@pytest.mark.parametrize("problem", ["duplicate", "parent_is_file"])
def test_rejected_upload_leaves_existing_tree_exactly(vfs, client, problem):
    fs = vfs.create()
    assert vfs.run(fs, EXISTING)["status"] == "successful"
    before = snapshot(vfs, client, fs)
    assert len(before[0]) == 5
    # Every line otherwise valid and changing everything: new, changed and removed entries.
    lines = [item("/", "top", True, owner="other"), item("/top", "a.txt", size_in_bytes=12),
             item("/new/", "n1"), item("/top", "file", size_in_bytes=6)]
    if problem == "duplicate":
        lines.append(item("/top/", "a.txt", size_in_bytes=13))
        code = "duplicate_entry"
    else:
        lines.append(item("/top/file/", "child"))
        code = "parent_is_file"
    job = vfs.run(fs, jsonl(*lines))
    assert job["status"] == "failed" and "not changed" in job["msg"]
    assert [(e["line"], e["code"]) for e in vfs.errors(job["id"])] == [(5, code)]
    assert job["counts"]["applied"] is False and job["counts"]["added"] == 0
    assert snapshot(vfs, client, fs) == before


@pytest.mark.parametrize("existing", [False, True], ids=["empty-fs", "existing-tree"])
def test_skip_mode_duplicates_keep_the_first_line(vfs, client, existing):
    fs = vfs.create()
    if existing:
        assert vfs.run(fs, EXISTING)["status"] == "successful"
    body = jsonl(item("/top", "a.txt", size_in_bytes=1, owner="first"),
                 item("/", "top", True),
                 item("/top/", "a.txt", size_in_bytes=2, owner="second"),
                 item("/top", "a.txt", True, owner="third"))
    job = vfs.run(fs, body, params="?on_error=skip")
    assert job["status"] == "successful"
    assert job["counts"]["skipped"] == 2
    assert [(e["line"], e["code"]) for e in vfs.errors(job["id"])] == [(3, "duplicate_entry"), (4, "duplicate_entry")]
    a = client.get(f"/api/v1/filesystem/{fs}/entry", params={"path": "/top/a.txt"}).json()
    assert (a["size_in_bytes"], a["owner"], a["is_directory"]) == (1, "first", False)
    assert [t[1] for t in vfs.tree(fs)] == ["/top", "/top/a.txt"]


def test_dry_run_into_empty_fs_changes_nothing_and_reports_counts(vfs, client):
    fs = vfs.create()
    body = jsonl(item("/", "var", True), item("/var/log/", "a"), item("/var/log/", "b", size_in_bytes=3),
                 item("/x/y/", "z"))
    job = vfs.run(fs, body, params="?dry_run=true")
    assert job["status"] == "successful"
    c = job["counts"]
    assert (c["received"], c["added"], c["implied_directories"], c["updated"], c["removed"]) == (4, 7, 3, 0, 0)
    assert (c["dry_run"], c["applied"]) == (True, False)
    assert job["result"][0] == "Dry run: would upload 7 directories and files."
    assert vfs.tree(fs) == [] and vfs.export(fs) == b""
    assert client.get(f"/api/v1/filesystem/{fs}/").json()["entry_count"] == 0
    # and the real upload afterwards does exactly what the dry run said
    real = vfs.run(fs, body)["counts"]
    assert {k: real[k] for k in ("received", "added", "implied_directories")} == \
        {k: c[k] for k in ("received", "added", "implied_directories")}


# --------------------------------------------------------------------------- path + name length


def test_path_and_name_over_the_key_limit_are_line_errors(vfs, client):
    from fileregistry.vfs.records import MAX_KEY_BYTES

    fs = vfs.create()
    assert vfs.run(fs, SEED_BODY)["status"] == "successful"
    before = snapshot(vfs, client, fs)
    deep = "/" + "/".join(["d" * 200] * 5)  # 1,004 bytes of parent path
    ok_name = "n" * (MAX_KEY_BYTES - len(deep.strip("/")))  # exactly the limit
    body = jsonl(
        item(deep + "/", ok_name),
        item(deep + "/", ok_name + "x"),  # one byte over
        item("/", "é" * 1001),  # 2,002 bytes in UTF-8, 1,001 characters
        item("/", "ok.csv"),
    )
    job = vfs.run(fs, body)  # all or nothing: rejected, the old tree stays
    assert job["status"] == "failed", job
    errs = sorted((e["line"], e["field"], e["code"]) for e in vfs.errors(job["id"]))
    assert errs == [(2, "path", "path_too_long"), (3, "path", "path_too_long")]
    assert snapshot(vfs, client, fs) == before
    job = vfs.run(fs, body, params="?on_error=skip")
    assert job["status"] == "successful", (job, vfs.errors(job["id"]))
    assert job["counts"]["errors"] == 2
    e = client.get(f"/api/v1/filesystem/{fs}/entry", params={"path": f"{deep}/{ok_name}"})
    assert e.status_code == 200, e.text
