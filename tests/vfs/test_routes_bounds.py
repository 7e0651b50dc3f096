"""Ids beyond 64 bits and NUL characters are client errors naming the parameter, never a 500."""

from __future__ import annotations

import base64

import pytest

from tests.vfs.conftest import SEED_BODY

BIG = 2**63  # one past the largest id either database can hold
HUGE = 10**30


def _names(body) -> list:
    return [d["loc"][-1] for d in body["detail"]]


@pytest.mark.parametrize("n", [BIG, HUGE])
def test_ids_beyond_64_bits_are_422_naming_the_parameter(vfs, client, n):
    fs = vfs.create()
    cases = [
        ("GET", f"/api/v1/filesystem/{n}/", "fs_id"),
        ("DELETE", f"/api/v1/filesystem/{n}/", "fs_id"),
        ("GET", f"/api/v1/filesystem/{n}/children", "fs_id"),
        ("GET", f"/api/v1/filesystem/{n}/entry?path=/var", "fs_id"),
        ("GET", f"/api/v1/filesystem/{n}/export", "fs_id"),
        ("POST", f"/api/v1/bulk_metadata/file_upload/{n}/", "fs_id"),
        ("POST", f"/api/v1/bulk_metadata/file_upload/{n}", "fs_id"),
        ("GET", f"/api/v1/bulk_metadata/job/?id={n}", "id"),
        ("GET", f"/api/job/{n}/", "job_id"),
        ("GET", f"/api/job_error/?job_id={n}", "job_id"),
        ("GET", f"/api/job_error/?job_id=1&cursor={n}", "cursor"),
    ]
    for method, url, name in cases:
        r = client.request(method, url, content=SEED_BODY if method == "POST" else None)
        assert r.status_code == 422, (url, r.status_code, r.text)
        assert name in _names(r.json()), (url, r.text)
    assert len(vfs.tree(fs)) == 0  # and the server is fine


def test_largest_ids_are_plain_not_found(vfs, client):
    n = BIG - 1
    assert client.get(f"/api/v1/filesystem/{n}/").status_code == 404
    assert client.get(f"/api/v1/filesystem/{n}/children").status_code == 404
    assert client.get(f"/api/v1/filesystem/{n}/entry", params={"path": "/a"}).status_code == 404
    assert client.get(f"/api/v1/filesystem/{n}/export").status_code == 404
    assert client.delete(f"/api/v1/filesystem/{n}/").status_code == 404
    r = client.post(f"/api/v1/bulk_metadata/file_upload/{n}/", content=SEED_BODY)
    assert r.status_code == 400 and "Cannot find FileSystem" in r.json()["error"]
    assert client.get("/api/v1/bulk_metadata/job/", params={"id": n}).status_code == 404
    assert client.get(f"/api/job/{n}/").status_code == 404
    assert client.get("/api/job_error/", params={"job_id": n}).status_code == 404
    fs = vfs.create()
    job = vfs.run(fs, SEED_BODY)
    r = client.get("/api/job_error/", params={"job_id": job["id"], "cursor": n})
    assert r.status_code == 200 and r.json() == []


def test_nul_in_paths_and_cursors_is_a_client_error(vfs, client):
    fs = vfs.create()
    assert vfs.run(fs, SEED_BODY)["status"] == "successful"
    for path in ("/var\u0000", "\u0000", "/var/\u0000log"):
        r = client.get(f"/api/v1/filesystem/{fs}/children", params={"path": path})
        assert r.status_code == 422 and "path" in _names(r.json()), r.text
        r = client.get(f"/api/v1/filesystem/{fs}/entry", params={"path": path})
        assert r.status_code == 422 and "path" in _names(r.json()), r.text
    cursor = base64.urlsafe_b64encode("lo\u0000g".encode()).decode().rstrip("=")
    r = client.get(f"/api/v1/filesystem/{fs}/children", params={"path": "/var", "cursor": cursor})
    assert r.status_code == 400 and "cursor" in r.text and "NUL" in r.text
    r = client.post("/api/v1/filesystem/", json={"name": "bad\u0000name"})
    assert r.status_code == 422 and "name" in _names(r.json())
    # the normal paths still work
    r = client.get(f"/api/v1/filesystem/{fs}/children", params={"path": "/var"})
    assert r.status_code == 200 and [e["name"] for e in r.json()["items"]] == ["log"]
