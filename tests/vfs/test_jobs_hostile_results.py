"""A job whose report holds hostile values (long or NUL-bearing fields, huge line numbers), or whose
result cannot be written at all, still ends ``successful`` or ``failed``: never ``running``."""

from __future__ import annotations

import orjson

from fileregistry.jobs import store as jobs_store
from fileregistry.jobs.runner import HANDLERS, JobResult
from fileregistry.vfs import service
from tests.vfs.conftest import item, jsonl


def test_unknown_keys_too_long_or_with_nul_do_not_hang_the_job(vfs):
    fs = vfs.create()
    long_key = "k" * 100
    body = jsonl(item("/", "a", True, **{long_key: 1}), item("/", "b", False, **{"\u0000nul": 2}),
                 item("/", "c", False, **{"x\u0000" * 40: 3}))
    job = vfs.run(fs, body)
    assert job["status"] == "successful", job
    assert job["counts"]["warnings"] == 3
    errs = vfs.errors(job["id"])
    assert [e["line"] for e in errs] == [1, 2, 3]
    assert all(e["code"] == "unknown_field" for e in errs)
    assert errs[0]["field"] == long_key[:64]
    assert errs[1]["field"] == "\ufffdnul" and "\u0000" not in errs[1]["message"]
    assert len(errs[2]["field"]) == 64 and "\u0000" not in errs[2]["field"]
    assert [e[1] for e in vfs.tree(fs)] == ["/a", "/b", "/c"]


def test_hostile_issue_values_are_cut_to_the_columns(vfs, monkeypatch):
    async def hostile(ctx):
        issues = [{"severity": "warning" * 3, "line": 2**40, "field": "f" * 500, "code": "c\u0000" * 100,
                   "message": "m\u0000" * 10_000},
                  {"severity": "error", "line": 2**70, "field": None, "code": "x", "message": "huge line"},
                  {"severity": "error", "line": -1, "field": "\u0000", "code": "y", "message": "negative"}]
        return JobResult(status="successful", msg="ok\u0000", result=["done\u0000"], counts={"n": 1},
                         issues=issues)

    monkeypatch.setitem(HANDLERS, service.KIND, (hostile, None))
    fs = vfs.create()
    job = vfs.run(fs, jsonl(item("/", "a")))
    assert job["status"] == "successful", job
    assert job["msg"] == "ok\ufffd" and job["result"] == ["done\ufffd"]
    errs = vfs.errors(job["id"])
    assert len(errs) == 3
    assert errs[0]["line"] == 2**40 and len(errs[0]["field"]) == 64 and len(errs[0]["code"]) == 64
    assert len(errs[0]["severity"]) <= 8 and len(errs[0]["message"]) == jobs_store.MESSAGE_MAX
    assert "\u0000" not in orjson.dumps(errs).decode().replace("\\u0000", "\u0000")
    assert errs[1]["line"] is None and errs[2]["line"] is None and errs[2]["field"] == "\ufffd"


def test_result_that_cannot_be_written_marks_the_job_failed(vfs, monkeypatch):
    real = jobs_store.finish
    calls: list[int] = []

    async def flaky(conn, job_id, **kw):
        calls.append(job_id)
        if len(calls) == 1:
            raise RuntimeError("simulated: the database refused the report")
        return await real(conn, job_id, **kw)

    monkeypatch.setattr(jobs_store, "finish", flaky)
    fs = vfs.create()
    job = vfs.run(fs, jsonl(item("/", "a", True), item("/a", "b")))
    assert job["status"] == "failed", job
    assert "report could not be saved" in job["msg"] and "Uploaded 2" in job["msg"]
    assert vfs.errors(job["id"]) == []
    # the runner is still alive and runs the next job normally
    monkeypatch.setattr(jobs_store, "finish", real)
    assert vfs.run(fs, jsonl(item("/", "z")))["status"] == "successful"
