"""Replace semantics, dry run, gzip, URL forms, unknown fs, browse paging, serialisation, auth."""

from __future__ import annotations

import gzip

from tests.vfs.conftest import SEED_BODY, item, jsonl


def test_replace_by_diff_keeps_ids(vfs, client):
    fs = vfs.create()
    v1 = jsonl(item("/", "a", True), item("/a", "same", size_in_bytes=1), item("/a", "chg", size_in_bytes=1),
               item("/a", "gone"))
    assert vfs.run(fs, v1)["status"] == "successful"
    ids = {t[1]: t[0] for t in vfs.tree(fs)}
    v2 = jsonl(item("/", "a", True), item("/a", "same", size_in_bytes=1), item("/a", "chg", size_in_bytes=2),
               item("/a", "new"))
    job = vfs.run(fs, v2)
    c = job["counts"]
    assert (c["added"], c["updated"], c["unchanged"], c["removed"]) == (1, 1, 2, 1)
    after = {t[1]: t[0] for t in vfs.tree(fs)}
    assert after["/a"] == ids["/a"] and after["/a/same"] == ids["/a/same"] and after["/a/chg"] == ids["/a/chg"]
    assert "/a/gone" not in after and "/a/new" in after
    assert client.get(f"/api/v1/filesystem/{fs}/entry", params={"path": "/a/chg"}).json()["size_in_bytes"] == 2


def test_only_blank_lines_replaces_with_nothing(vfs):
    fs = vfs.create()
    assert vfs.run(fs, SEED_BODY)["status"] == "successful"
    job = vfs.run(fs, "\n")
    assert job["status"] == "successful" and job["counts"]["removed"] == 3
    assert vfs.tree(fs) == []


def test_dry_run_changes_nothing(vfs):
    fs = vfs.create()
    assert vfs.run(fs, SEED_BODY)["status"] == "successful"
    before = vfs.tree(fs)
    job = vfs.run(fs, jsonl(item("/", "var", True), item("/x/", "y")), params="?dry_run=true")
    assert job["status"] == "successful"
    c = job["counts"]
    assert c["dry_run"] is True and c["applied"] is False
    assert (c["added"], c["removed"], c["implied_directories"]) == (2, 2, 1)
    assert job["result"][0].startswith("Dry run")
    assert vfs.tree(fs) == before


def test_gzip_body(vfs):
    fs = vfs.create()
    job = vfs.run(fs, gzip.compress(SEED_BODY.encode()),
                  headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert job["status"] == "successful" and job["counts"]["added"] == 3


def test_requests_like_post_and_url_forms(vfs, client):
    fs = vfs.create()
    # requests' data= string: no content type at all; path without the trailing slash; no redirect
    r = client.post(f"/api/v1/bulk_metadata/file_upload/{fs}", content=SEED_BODY.encode(),
                    follow_redirects=False)
    assert r.status_code == 200 and not r.history, r.text
    assert vfs.wait(r.json()["job"]["id"])["status"] == "successful"
    r = client.post(f"/api/v1/bulk_metadata/file_upload/{fs}/", content=SEED_BODY.encode(),
                    headers={"Content-Type": "text/plain; charset=utf-8"}, follow_redirects=False)
    assert r.status_code == 200
    assert vfs.wait(r.json()["job"]["id"])["counts"]["unchanged"] == 3
    job_id = r.json()["job"]["id"]
    assert client.get(f"/api/job/{job_id}", follow_redirects=False).status_code == 200
    assert client.get("/api/v1/bulk_metadata/job", params={"id": job_id}, follow_redirects=False).status_code == 200


def test_unknown_fs_and_job(vfs, client):
    r = vfs.upload(999, SEED_BODY)
    assert r.status_code == 400
    assert r.json() == {"error": "Cannot find FileSystem id: 999"}
    assert client.get("/api/v1/bulk_metadata/job/", params={"id": 999}).status_code == 404
    assert client.get("/api/v1/filesystem/999/").status_code == 404


def test_bad_options(vfs):
    fs = vfs.create()
    r = vfs.upload(fs, SEED_BODY, params="?on_error=maybe")
    assert r.status_code == 400 and "on_error" in r.json()["error"]
    r = vfs.upload(fs, b"x", headers={"Content-Encoding": "gzip"})
    assert r.status_code == 400


def test_filesystem_crud(client, vfs):
    fs = vfs.create("one", "/")
    assert client.post("/api/v1/filesystem/", json={"name": "one"}).status_code == 409
    s3 = vfs.create("s3", ":")
    assert [f["name"] for f in client.get("/api/v1/filesystem/").json()] == ["one", "s3"]
    assert client.get(f"/api/v1/filesystem/{s3}/").json()["delimiter"] == ":"
    job = vfs.run(s3, jsonl(item(":bucket:", "k", False), item(":", "bucket", True)))
    assert job["status"] == "successful"
    assert client.get(f"/api/v1/filesystem/{s3}/entry", params={"path": "bucket:k"}).json()["full_path"] == ":bucket:k"
    assert client.get(f"/api/v1/filesystem/{s3}/").json()["entry_count"] == 2
    assert client.delete(f"/api/v1/filesystem/{fs}/").status_code == 204
    assert client.get(f"/api/v1/filesystem/{fs}/").status_code == 404
    assert client.post("/api/v1/filesystem/", json={"name": "x", "delimiter": "//"}).status_code == 422


def test_children_paging(vfs, client):
    fs = vfs.create()
    names = [f"f{i:03d}" for i in range(250)]
    assert vfs.run(fs, jsonl(*[item("/d/", n) for n in reversed(names)]))["status"] == "successful"
    got, cursor = [], None
    while True:
        params = {"path": "/d", "limit": 100}
        if cursor:
            params["cursor"] = cursor
        page = client.get(f"/api/v1/filesystem/{fs}/children", params=params).json()
        got += [e["name"] for e in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert got == names
    root = client.get(f"/api/v1/filesystem/{fs}/children").json()
    assert [(e["name"], e["implied"]) for e in root["items"]] == [("d", True)]
    assert client.get(f"/api/v1/filesystem/{fs}/children", params={"path": "/nope"}).status_code == 404
    assert client.get(f"/api/v1/filesystem/{fs}/children", params={"path": "/d/f001"}).status_code == 400
    assert client.get(f"/api/v1/filesystem/{fs}/entry", params={"path": "/d/zzz"}).status_code == 404


def test_concurrent_uploads_run_in_arrival_order(vfs):
    fs = vfs.create()
    ids = []
    for k in range(4):
        r = vfs.upload(fs, jsonl(*[item("/", f"v{k}-{i}") for i in range(200)]))
        ids.append(r.json()["job"]["id"])
    jobs = [vfs.wait(i) for i in ids]
    assert all(j["status"] == "successful" for j in jobs)
    # each upload replaced exactly the previous one: serialised in arrival order
    assert jobs[0]["counts"]["removed"] == 0
    assert all(j["counts"]["removed"] == 200 and j["counts"]["added"] == 200 for j in jobs[1:])
    assert {t[1][1:3] for t in vfs.tree(fs)} == {"v3"}


def test_admin_only_routes(vfs, anon_client, user_client):
    fs = vfs.create()
    r = anon_client.post(f"/api/v1/bulk_metadata/file_upload/{fs}/", content=SEED_BODY)
    assert r.status_code == 401
    assert r.json() == {"detail": "Authentication credentials were not provided."}
    assert user_client.post(f"/api/v1/bulk_metadata/file_upload/{fs}/", content=SEED_BODY).status_code == 403
    assert user_client.post("/api/v1/filesystem/", json={"name": "u"}).status_code == 403
    assert user_client.delete(f"/api/v1/filesystem/{fs}/").status_code == 403
    assert user_client.get("/api/v1/filesystem/").status_code == 200
    assert anon_client.get("/api/v1/filesystem/").status_code == 401
    bad = anon_client.post(f"/api/v1/bulk_metadata/file_upload/{fs}/", content=SEED_BODY,
                           headers={"TOKEN": "nope"})
    assert bad.status_code == 401 and bad.json() == {"detail": "Authentication failed"}
