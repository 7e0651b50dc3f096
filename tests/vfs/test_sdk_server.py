"""Alation's own SDK (allie-sdk) and raw HTTP against a REAL uvicorn server (subprocess)."""

from __future__ import annotations

import asyncio
import http.client
import os
import socket
import subprocess
import sys
import time
from datetime import timedelta

import httpx
import pytest

from fileregistry.db import create_nullpool_engine, session_factory, unit_of_work
from tests.vfs.conftest import SEED_BODY


async def _admin_token(url: str) -> tuple[int, str]:
    from fileregistry.auth import tokens, users

    engine = create_nullpool_engine(url)
    try:
        async with unit_of_work(session_factory(engine)) as s:
            admin = await users.create_user(s, "sdkadmin", is_admin=True)
            tok = await tokens.issue_access_token_for(s, admin, lifetime=timedelta(hours=1))
            return admin.id, tok.token
    finally:
        await engine.dispose()


@pytest.fixture
def server(db_url, tmp_path):
    """``fileregistry serve`` on a free port over the test database; yields (base_url, user_id, token)."""
    user_id, token = asyncio.run(_admin_token(db_url))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, FILEREGISTRY_DATA_DIR=str(tmp_path / "data"), FILEREGISTRY_DATABASE_URL=db_url,
               FILEREGISTRY_LOG_LEVEL="WARNING")
    proc = subprocess.Popen([sys.executable, "-c", "from fileregistry.cli import main; main()", "serve",
                             "--port", str(port)], env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(base + "/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        yield base, user_id, token
    finally:
        proc.terminate()
        proc.wait(20)


def test_alation_sdk_post_metadata_and_job_wait(server, monkeypatch):
    from allie_sdk import Alation
    from allie_sdk.models.virtual_filesystem_model import VirtualFileSystemItem

    import allie_sdk.methods.job as sdk_job
    monkeypatch.setattr(sdk_job, "sleep", lambda _s: time.sleep(0.05))  # the SDK polls every 3 s

    base, user_id, token = server
    fs_id = httpx.post(base + "/api/v1/filesystem/", json={"name": "sdk"}, headers={"TOKEN": token}).json()["id"]
    alation = Alation(base, user_id=user_id, access_token=token)
    items = [
        VirtualFileSystemItem(path="/", name="var", is_directory=True, owner="root", group="root",
                              permission_bits=755, size_in_bytes=0, ts_last_modified="2016-01-01T12:00:00.000Z"),
        VirtualFileSystemItem(path="/var/log/", name="mail.log", is_directory=False, size_in_bytes=28776,
                              ts_last_accessed="2016-11-20T12:00:00+00:00"),
    ]
    result = alation.virtual_filesystem.post_metadata(fs_id, items)
    assert len(result) == 1
    assert result[0].status == "successful", result
    assert result[0].result[0] == "Uploaded 3 directories and files."
    # and an empty list deletes everything (the SDK sends just "\n")
    result = alation.virtual_filesystem.post_metadata(fs_id, [])
    assert result[0].status == "successful"
    children = httpx.get(f"{base}/api/v1/filesystem/{fs_id}/children", headers={"TOKEN": token}).json()
    assert children["items"] == []


def test_raw_http_url_forms_on_real_server(server):
    base, _uid, token = server
    fs_id = httpx.post(base + "/api/v1/filesystem/", json={"name": "raw"}, headers={"TOKEN": token}).json()["id"]
    host, port = base.removeprefix("http://").split(":")
    for path in (f"//api/v1/bulk_metadata/file_upload/{fs_id}/", f"/api/v1/bulk_metadata/file_upload/{fs_id}",
                 f"//api/v1/bulk_metadata/file_upload/{fs_id}"):
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        conn.request("POST", path, body=SEED_BODY.encode(), headers={"Token": token,
                                                                      "Content-Type": "application/json"})
        resp = conn.getresponse()
        assert resp.status == 200, (path, resp.status, resp.read())
        assert b'"errors_url"' in resp.read()
        conn.close()
