"""The seed's sample upload, job endpoints, browse, export round trip."""

from __future__ import annotations

from tests.vfs.conftest import SEED_BODY, item, jsonl


def test_seed_sample_curl_like(vfs, client):
    fs = vfs.create()
    r = vfs.upload(fs, SEED_BODY)
    assert r.status_code == 200
    job = r.json()["job"]
    assert job == {"url": f"/api/job/{job['id']}/", "errors_url": f"/api/job_error/?job_id={job['id']}",
                   "id": job["id"]}
    status = vfs.wait(job["id"])
    assert status["status"] == "successful", status
    assert status["result"][0] == "Uploaded 3 directories and files."
    c = status["counts"]
    assert (c["received"], c["added"], c["updated"], c["removed"], c["implied_directories"]) == (3, 3, 0, 0, 0)
    # the job url and the SDK's polling url agree
    assert client.get(job["url"]).json()["status"] == "successful"
    assert client.get(job["errors_url"]).json() == []
    e = client.get(f"/api/v1/filesystem/{fs}/entry", params={"path": "/var/log/mail.log"}).json()
    assert e["size_in_bytes"] == 28776 and e["owner"] == "root" and e["group"] == "root"
    assert e["permission_bits"] == 755 and e["ts_last_modified"] == "2016-01-01 12:00:00"
    assert e["ts_last_accessed"] == "2016-11-20 12:00:00" and e["is_directory"] is False


def test_export_round_trip_is_a_no_op(vfs):
    fs = vfs.create()
    body = jsonl(
        item("/", "a", True), item("/a", "b", False, size_in_bytes=5, ts_last_modified="2020-02-02T10:00:00Z"),
        item("/x/y/", "deep.txt", False, owner="o", storage_type=3),  # implies /x and /x/y
    )
    first = vfs.run(fs, body)
    assert first["status"] == "successful", first
    assert first["counts"]["implied_directories"] == 2
    before = vfs.tree(fs)
    exported = vfs.export(fs)
    again = vfs.run(fs, exported)
    c = again["counts"]
    assert (c["added"], c["updated"], c["removed"]) == (0, 0, 0), again
    assert vfs.tree(fs) == before
