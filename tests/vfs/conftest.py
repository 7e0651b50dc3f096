"""Helpers for the VFS tests: create file systems, upload, wait for jobs."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest

SEED_BODY = (
    '{"path": "/", "name": "var", "is_directory": true, "owner": "root", "group": "root", "permission_bits": 755, "size_in_bytes": 0, "ts_last_accessed": "2016-11-20 12:00:00", "ts_last_modified": "2016-01-01 12:00:00"}\n'  # noqa: E501
    '{"path": "/var/", "name": "log", "group": "root", "is_directory": true, "owner": "root", "permission_bits": 755, "size_in_bytes": 0, "ts_last_accessed": "2016-11-20 12:00:00", "ts_last_modified": "2016-01-01 12:00:00"}\n'  # noqa: E501
    '{"path": "/var/log/", "name": "mail.log", "group": "root", "is_directory": false, "owner": "root", "permission_bits": 755, "size_in_bytes": 28776, "ts_last_accessed": "2016-11-20 12:00:00", "ts_last_modified": "2016-01-01 12:00:00"}\n'  # noqa: E501
)


def jsonl(*objs: dict[str, Any]) -> bytes:
    return b"".join(orjson.dumps(o) + b"\n" for o in objs)


def item(path: str, name: str, is_dir: bool = False, **kw: Any) -> dict[str, Any]:
    return {"path": path, "name": name, "is_directory": is_dir, **kw}


class Vfs:
    def __init__(self, client) -> None:
        self.c = client

    def create(self, name: str = "fs1", delimiter: str = "/") -> int:
        r = self.c.post("/api/v1/filesystem/", json={"name": name, "delimiter": delimiter})
        assert r.status_code == 201, r.text
        return r.json()["id"]

    def upload(self, fs_id: int, body: bytes | str, *, params: str = "", headers: dict | None = None):
        return self.c.post(f"/api/v1/bulk_metadata/file_upload/{fs_id}/{params}", content=body,
                           headers=headers or {"Content-Type": "application/json"})

    def wait(self, job_id: int, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            r = self.c.get("/api/v1/bulk_metadata/job/", params={"id": job_id})
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["status"] in ("running", "successful", "failed")
            if body["status"] != "running":
                return body
            assert time.monotonic() < deadline, f"job {job_id} still running"
            time.sleep(0.05)

    def run(self, fs_id: int, body: bytes | str, params: str = "", **kw) -> dict[str, Any]:
        r = self.upload(fs_id, body, params=params, **kw)
        assert r.status_code in (200, 202), r.text
        return self.wait(r.json()["job"]["id"])

    def errors(self, job_id: int) -> list[dict[str, Any]]:
        r = self.c.get("/api/job_error/", params={"job_id": job_id, "limit": 1000})
        assert r.status_code == 200, r.text
        return r.json()

    def export(self, fs_id: int) -> bytes:
        r = self.c.get(f"/api/v1/filesystem/{fs_id}/export")
        assert r.status_code == 200, r.text
        return r.content

    def tree(self, fs_id: int) -> list[tuple]:
        """Every entry (id, full_path, is_dir, implied) by walking children."""
        out: list[tuple] = []
        stack = ["/"]
        while stack:
            path = stack.pop()
            cursor = None
            while True:
                params = {"path": path, "limit": 1000}
                if cursor:
                    params["cursor"] = cursor
                r = self.c.get(f"/api/v1/filesystem/{fs_id}/children", params=params)
                assert r.status_code == 200, r.text
                page = r.json()
                for e in page["items"]:
                    out.append((e["id"], e["full_path"], e["is_directory"], e["implied"]))
                    if e["is_directory"]:
                        stack.append(e["full_path"])
                cursor = page["next_cursor"]
                if not cursor:
                    break
        return sorted(out, key=lambda t: t[1])


@pytest.fixture
def vfs(client) -> Vfs:
    return Vfs(client)
