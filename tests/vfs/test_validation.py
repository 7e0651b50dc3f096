"""Every line rule of the seed's table and the cross-line rules, over HTTP; the fs is unchanged after a
rejected upload."""

from __future__ import annotations

import pytest

from tests.vfs.conftest import item, jsonl

BASE = jsonl(item("/", "keep", True), item("/keep", "f.txt", size_in_bytes=1))

BAD_LINES = [
    # (second line, field, code)
    (b'{"path": "/", "name": "x", "is_directory": true', None, "invalid_json"),
    (b'["not", "an", "object"]', None, "not_an_object"),
    (b'{"name": "x", "is_directory": true}', "path", "missing_field"),
    (b'{"path": 5, "name": "x", "is_directory": true}', "path", "invalid_type"),
    (b'{"path": "/a//b", "name": "x", "is_directory": true}', "path", "invalid_path"),
    (b'{"path": "/", "is_directory": true}', "name", "missing_field"),
    (b'{"path": "/", "name": "a/b", "is_directory": true}', "name", "invalid_name"),
    (b'{"path": "/", "name": "", "is_directory": true}', "name", "invalid_name"),
    (b'{"path": "/", "name": "x"}', "is_directory", "missing_field"),
    (b'{"path": "/", "name": "x", "is_directory": "true"}', "is_directory", "invalid_type"),
    (b'{"path": "/", "name": "x", "is_directory": 1}', "is_directory", "invalid_type"),
    (b'{"path": "/", "name": "x", "is_directory": false, "size_in_bytes": -1}', "size_in_bytes", "invalid_value"),
    (b'{"path": "/", "name": "x", "is_directory": false, "size_in_bytes": 1.5}', "size_in_bytes", "invalid_value"),
    (b'{"path": "/", "name": "x", "is_directory": false, "size_in_bytes": "12"}', "size_in_bytes",
     "invalid_value"),
    # above BIGINT (2**63 - 1): orjson still gives an int up to 2**64 - 1
    (b'{"path": "/", "name": "x", "is_directory": false, "size_in_bytes": 9223372036854775808}', "size_in_bytes",
     "invalid_value"),
    (b'{"path": "/", "name": "x", "is_directory": false, "size_in_bytes": 18446744073709551615}', "size_in_bytes",
     "invalid_value"),
    (b'{"path": "/", "name": "x", "is_directory": false, "size_in_bytes": 18446744073709551616}', "size_in_bytes",
     "invalid_value"),
    # valid local times whose UTC falls outside years 1..9999
    (b'{"path": "/", "name": "x", "is_directory": false, "ts_last_modified": "0001-01-01T00:00:00+01:00"}',
     "ts_last_modified", "invalid_timestamp"),
    (b'{"path": "/", "name": "x", "is_directory": false, "ts_last_accessed": "9999-12-31T23:59:59-01:00"}',
     "ts_last_accessed", "invalid_timestamp"),
    (b'{"path": "/", "name": "x", "is_directory": false, "ts_last_modified": "0001-01-01 00:59:59+01:00"}',
     "ts_last_modified", "invalid_timestamp"),
    (b'{"path": "/", "name": "x", "is_directory": false, "ts_last_modified": "01/02/2016"}', "ts_last_modified",
     "invalid_timestamp"),
    (b'{"path": "/", "name": "x", "is_directory": false, "ts_last_accessed": "2016-13-01 00:00:00"}',
     "ts_last_accessed", "invalid_timestamp"),
    (b'{"path": "/", "name": "x", "is_directory": false, "ts_last_modified": 1451649600}', "ts_last_modified",
     "invalid_type"),
    (b'{"path": "/", "name": "x", "is_directory": false, "permission_bits": 758}', "permission_bits",
     "invalid_value"),
    (b'{"path": "/", "name": "x", "is_directory": false, "permission_bits": 1755}', "permission_bits",
     "invalid_value"),
    (b'{"path": "/", "name": "x", "is_directory": false, "permission_bits": "0o755"}', "permission_bits",
     "invalid_value"),
    (b'{"path": "/", "name": "x", "is_directory": false, "storage_type": 4}', "storage_type", "invalid_value"),
    (b'{"path": "/", "name": "x", "is_directory": false, "owner": 7}', "owner", "invalid_type"),
    (b'{"path": "/", "name": "x", "is_directory": false, "group": ["g"]}', "group", "invalid_type"),
    (b'{"path": "/", "name": "caf\xe9", "is_directory": false}', None, "invalid_utf8"),
]


@pytest.mark.parametrize(("line", "field", "code"), BAD_LINES, ids=[c for _l, _f, c in BAD_LINES])
def test_invalid_line_rejects_whole_upload(vfs, line, field, code):
    fs = vfs.create()
    assert vfs.run(fs, BASE)["status"] == "successful"
    before = vfs.tree(fs)
    body = b'{"path": "/", "name": "new", "is_directory": true}\n' + line + b"\n"
    job = vfs.run(fs, body)
    assert job["status"] == "failed"
    assert "not changed" in job["msg"]
    errs = [e for e in vfs.errors(job["id"]) if e["severity"] == "error"]
    assert len(errs) == 1, errs
    assert (errs[0]["line"], errs[0]["field"], errs[0]["code"]) == (2, field, code)
    assert errs[0]["message"]
    assert vfs.tree(fs) == before  # all or nothing


def test_valid_forms_are_accepted(vfs, client):
    fs = vfs.create()
    body = jsonl(
        item("d1/", "a", False, ts_last_modified="2016-01-01T12:00:00Z", ts_last_accessed="2016-01-01T13:30:00.75+01:30",
             permission_bits=7, storage_type=0, owner="", group="g"),
        item("/d1", "b", False, ts_last_modified="2016-01-01T12:00:00.123456", permission_bits=0),
        item("/", "d1", True),  # any order: the parent after its children
        item("/D1/", "a", False),  # case-sensitive: a different directory (implied)
    )
    job = vfs.run(fs, body)
    assert job["status"] == "successful", (job, vfs.errors(job["id"]))
    assert job["counts"]["implied_directories"] == 1
    a = client.get(f"/api/v1/filesystem/{fs}/entry", params={"path": "/d1/a"}).json()
    assert a["ts_last_modified"] == "2016-01-01 12:00:00"
    assert a["ts_last_accessed"] == "2016-01-01 12:00:00"  # 13:30:00.75+01:30 -> 12:00:00 UTC, floored
    assert a["permission_bits"] == 7 and a["storage_type"] == 0 and a["owner"] == ""
    assert client.get(f"/api/v1/filesystem/{fs}/entry", params={"path": "/D1"}).json()["implied"] is True


def test_unknown_keys_are_warnings(vfs):
    fs = vfs.create()
    job = vfs.run(fs, jsonl(item("/", "a", True, colour="blue")))
    assert job["status"] == "successful"
    assert job["counts"]["warnings"] == 1 and job["counts"]["errors"] == 0
    (w,) = vfs.errors(job["id"])
    assert (w["severity"], w["line"], w["field"], w["code"]) == ("warning", 1, "colour", "unknown_field")


def test_duplicate_names_both_lines(vfs):
    fs = vfs.create()
    body = jsonl(item("/", "a", True), item("/", "b"), item("/a/", "x"), item("/", "a", True))
    job = vfs.run(fs, body)
    assert job["status"] == "failed"
    (e,) = vfs.errors(job["id"])
    assert (e["line"], e["code"]) == (4, "duplicate_entry")
    assert "lines 1 and 4" in e["message"]
    assert vfs.tree(fs) == []


def test_parent_is_a_file(vfs):
    fs = vfs.create()
    body = jsonl(item("/", "f", False), item("/f", "child"), item("/f/sub/", "deeper"), item("/", "ok", True))
    job = vfs.run(fs, body)
    assert job["status"] == "failed"
    errs = vfs.errors(job["id"])
    assert sorted(e["line"] for e in errs) == [2, 3]
    assert all(e["code"] == "parent_is_file" and e["field"] == "path" and "line 1" in e["message"] for e in errs)
    # on_error=skip applies the rest, without implying /f/sub under the file
    job = vfs.run(fs, body, params="?on_error=skip")
    assert job["status"] == "successful"
    assert job["counts"]["skipped"] == 2 and job["counts"]["implied_directories"] == 0
    assert [t[1] for t in vfs.tree(fs)] == ["/f", "/ok"]


def test_blank_lines_ignored_and_line_numbers_are_physical(vfs):
    fs = vfs.create()
    body = b"\n\n" + jsonl(item("/", "a", True)) + b"   \n\r\n" + b'{"path": "/", "name": 1, "is_directory": true}\n'
    job = vfs.run(fs, body)
    assert job["status"] == "failed"
    assert [e["line"] for e in vfs.errors(job["id"])] == [6]


def test_invalid_line_in_skip_mode_and_errors_paging(vfs, client):
    fs = vfs.create()
    lines = [item("/", "d", True)] + [item("/d", f"f{i}", size_in_bytes=-i - 1) for i in range(150)]
    lines.append(item("/d", "good"))
    job = vfs.run(fs, jsonl(*lines), params="?on_error=skip")
    assert job["status"] == "successful"
    assert job["counts"]["errors"] == 150 and job["counts"]["added"] == 2
    r = client.get("/api/job_error/", params={"job_id": job["id"], "limit": 100})
    first = r.json()
    assert len(first) == 100 and r.headers["X-Next-Page"]
    second = client.get(r.headers["X-Next-Page"]).json()
    assert len(second) == 50
    assert [e["line"] for e in first + second] == list(range(2, 152))
