"""Client VFS methods against a live server: file systems, uploads from every body kind, jobs, browsing."""

from __future__ import annotations

import asyncio
import gzip
import io
import json

import pytest

from fileregistry.client import (
    AsyncClient,
    BadRequest,
    Client,
    Conflict,
    Forbidden,
    JobFailed,
    NotFound,
    ValidationFailed,
)


def tree(n_files: int = 0) -> list[dict]:
    lines = [
        {"path": "/", "name": "var", "is_directory": True, "owner": "root", "permission_bits": 755},
        {"path": "/var", "name": "log", "is_directory": True},
        {"path": "/var/log", "name": "mail.log", "is_directory": False, "size_in_bytes": 28776,
         "ts_last_modified": "2016-01-01 12:00:00"},
    ]
    lines += [{"path": "/data", "name": f"f{i:04d}.csv", "is_directory": False, "size_in_bytes": i}
              for i in range(n_files)]
    return lines


def body(lines: list[dict]) -> bytes:
    return b"".join(json.dumps(x).encode() + b"\n" for x in lines)


def admin(server) -> Client:
    return Client(server.url, refresh_token=server.admin_refresh, user_id=server.admin_id)


def test_filesystems_upload_bytes_wait_browse_export(server, tmp_path):
    with admin(server) as fr:
        fs = fr.create_filesystem("hdfs-prod")
        assert fs.name == "hdfs-prod" and fs.delimiter == "/"
        assert [f.id for f in fr.list_filesystems()] == [fs.id]

        job = fr.wait_for_job(fr.upload(fs.id, body(tree(25))).job.id, poll=0.05, timeout=60)
        assert job.status == "successful", job
        assert job.counts["added"] == 29 and job.counts["implied_directories"] == 1
        assert fr.get_filesystem(fs.id).entry_count == 29

        page = fr.children(fs.id, "/data", limit=10)
        assert [e.name for e in page.items] == [f"f{i:04d}.csv" for i in range(10)]
        assert page.next_cursor
        names = [e.name for e in fr.iter_children(fs.id, "/data", page_size=7)]
        assert names == [f"f{i:04d}.csv" for i in range(25)]
        mail = fr.entry(fs.id, "/var/log/mail.log")
        assert mail.size_in_bytes == 28776 and mail.ts_last_modified == "2016-01-01 12:00:00"

        exported = list(fr.iter_export(fs.id))
        assert {(x["path"], x["name"]) for x in exported} >= {("/var/log", "mail.log"), ("/data", "f0024.csv")}
        out = tmp_path / "tree.jsonl"
        size = fr.export(fs.id, out)
        assert size == out.stat().st_size > 0
        # an unchanged re-upload of the export from its path: nothing added, updated or removed
        again = fr.wait_for_job(fr.upload(fs.id, out).job.id, poll=0.05, timeout=60)
        assert (again.status, again.counts["added"], again.counts["updated"], again.counts["removed"]) == (
            "successful", 0, 0, 0)

        fr.delete_filesystem(fs.id)
        with pytest.raises(NotFound):
            fr.get_filesystem(fs.id)


def test_upload_from_iterable_gzip_path_and_dry_run(server, tmp_path):
    with admin(server) as fr:
        fs = fr.create_filesystem("s3")
        # an iterable of dicts, str and bytes lines, streamed
        mixed = iter([tree()[0], json.dumps(tree()[1]), json.dumps(tree()[2]).encode()])
        job = fr.wait_for_job(fr.upload(fs.id, mixed).job.id, poll=0.05, timeout=60)
        assert job.status == "successful" and job.counts["received"] == 3
        # a .gz path is sent gzip-encoded
        gz = tmp_path / "tree.jsonl.gz"
        gz.write_bytes(gzip.compress(body(tree(3))))
        job = fr.wait_for_job(fr.upload(fs.id, gz).job.id, poll=0.05, timeout=60)
        assert job.status == "successful" and job.counts["added"] == 4
        # dry run: counts planned, nothing changed
        job = fr.wait_for_job(fr.upload(fs.id, b"\n", dry_run=True).job.id, poll=0.05, timeout=60)
        assert job.counts["dry_run"] is True and job.counts["removed"] == 7
        assert fr.get_filesystem(fs.id).entry_count == 7
        # a generator (a generator function's result) works the same way
        job = fr.wait_for_job(fr.upload(fs.id, (x for x in tree())).job.id, poll=0.05, timeout=60)
        assert job.counts["removed"] == 4


def test_failed_job_errors_paged_and_raise_on_failure(server):
    with admin(server) as fr:
        fs = fr.create_filesystem("bad")
        lines = [{"path": "/", "name": f"f{i}", "is_directory": False, "size_in_bytes": -1} for i in range(5)]
        up = fr.upload(fs.id, lines)
        with pytest.raises(JobFailed) as exc:
            fr.wait_for_job(up.job.id, poll=0.05, timeout=60, raise_on_failure=True)
        assert exc.value.job.status == "failed"
        first = fr.job_errors(up.job.id, limit=2)
        assert [e.line for e in first] == [1, 2]
        assert fr.job_errors(up.job.id, limit=2, cursor=first[-1].id)[0].line == 3
        errors = list(fr.iter_job_errors(up.job.id, page_size=2))
        assert [(e.line, e.code, e.field) for e in errors] == [(i, "invalid_value", "size_in_bytes")
                                                              for i in range(1, 6)]
        assert fr.get_filesystem(fs.id).entry_count == 0
        job = fr.wait_for_job(fr.upload(fs.id, lines, on_error="skip").job.id, poll=0.05, timeout=60)
        assert job.status == "successful" and job.counts["skipped"] == 5


def test_typed_errors_carry_the_server_message(server):
    with admin(server) as fr:
        fs = fr.create_filesystem("dup")
        with pytest.raises(Conflict) as conflict:
            fr.create_filesystem("dup")
        assert conflict.value.status_code == 409 and "dup" in conflict.value.message
        with pytest.raises(BadRequest) as bad:
            fr.upload(987654, b"\n")
        assert bad.value.message == "Cannot find FileSystem id: 987654"
        with pytest.raises(NotFound) as nf:
            fr.job_status(987654)
        assert nf.value.message == "Cannot find Job id: 987654" and nf.value.body == {
            "error": "Cannot find Job id: 987654"}
        with pytest.raises(ValidationFailed) as invalid:
            fr.children(fs.id, "/", limit=5000)
        assert invalid.value.status_code == 422 and invalid.value.message.startswith("limit: ")
        with pytest.raises(ValidationFailed) as invalid:
            fr.create_filesystem("x", delimiter="//")
        assert "delimiter" in invalid.value.message
        with pytest.raises(NotFound) as nf:
            fr.children(fs.id, "/nowhere")
        assert "nowhere" in nf.value.message
    with Client(server.url, refresh_token=server.user_refresh, user_id=server.user_id) as alice:
        assert [f.name for f in alice.list_filesystems()] == ["dup"]  # reads are for everyone
        with pytest.raises(Forbidden) as forbidden:
            alice.create_filesystem("mine")
        assert forbidden.value.status_code == 403 and forbidden.value.message == "This action requires an admin user."
        with pytest.raises(Forbidden):
            alice.upload(fs.id, b"\n")
        with pytest.raises(Forbidden):
            alice.list_users()


def test_async_client_vfs(server):
    async def lines():
        for x in tree(5):
            yield x

    async def go() -> None:
        async with AsyncClient(server.url, refresh_token=server.admin_refresh, user_id=server.admin_id) as fr:
            fs = await fr.create_filesystem("async")
            up = await fr.upload(fs.id, lines())
            job = await fr.wait_for_job(up.job.id, poll=0.05, timeout=60)
            assert job.status == "successful" and job.counts["added"] == 9
            names = [e.name async for e in fr.iter_children(fs.id, "/data", page_size=2)]
            assert names == [f"f{i:04d}.csv" for i in range(5)]
            exported = [x async for x in fr.iter_export(fs.id)]
            assert len(exported) == 8  # the implied /data directory is left out
            buf = io.BytesIO()
            assert await fr.export(fs.id, buf) == len(buf.getvalue()) > 0
            bad = await fr.upload(fs.id, [{"path": "/", "name": "a/b", "is_directory": True}])
            assert (await fr.wait_for_job(bad.job.id, poll=0.05, timeout=60)).status == "failed"
            assert [e.code async for e in fr.iter_job_errors(bad.job.id)] == ["invalid_name"]
            assert (await fr.job_errors(bad.job.id))[0].line == 1
            with pytest.raises(Conflict):
                await fr.create_filesystem("async")
            users = await fr.list_users()
            assert {u.username for u in users} == {"admin", "alice"}
            await fr.delete_filesystem(fs.id)
            assert await fr.list_filesystems() == []

    asyncio.run(go())


def test_upload_after_a_revoked_token_replays_files_and_lists_not_generators(server, tmp_path):
    from fileregistry.client import Unauthorized

    from .conftest import Recorder, revoke_access_token

    rec = Recorder()
    src = tmp_path / "tree.jsonl"
    src.write_bytes(body(tree()))
    with Client(server.url, refresh_token=server.admin_refresh, user_id=server.admin_id, transport=rec) as fr:
        fs = fr.create_filesystem("replay")
        for data in (src, tree(), body(tree())):
            revoke_access_token(server.db_url, fr._tokens.access_token)
            job = fr.wait_for_job(fr.upload(fs.id, data).job.id, poll=0.05, timeout=60)
            assert job.status == "successful"
        revoke_access_token(server.db_url, fr._tokens.access_token)
        with pytest.raises(Unauthorized):
            fr.upload(fs.id, (x for x in tree()))  # a generator cannot be sent twice
        job = fr.wait_for_job(fr.upload(fs.id, (x for x in tree())).job.id, poll=0.05, timeout=60)
        assert job.status == "successful"  # ... but the token was refreshed for the next call
    uploads = [s for _m, p, s in rec.log if p.startswith("/api/v1/bulk_metadata/file_upload/")]
    assert uploads == [401, 200, 401, 200, 401, 200, 401, 200]
