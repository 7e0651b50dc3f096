"""GET /sftp/file/{name}?state=...: the mirror copy of a tracked file, for workers on other hosts."""

from __future__ import annotations

import pytest

from .helpers import call


def test_download_in_each_state(client, zone):
    data = bytes(range(256)) * 64
    zone.put("report.bin", data)
    call(client, "POST", "/sftp/scan", zone.cfg)
    r = call(client, "GET", "/sftp/file/report.bin", zone.cfg, params={"state": "new"})
    assert r.status_code == 200 and r.content == data
    assert r.headers["content-type"] == "application/octet-stream"
    assert 'filename="report.bin"' in r.headers["content-disposition"]
    moved = call(client, "POST", "/sftp/mark-processing/report.bin", zone.cfg).json()["new_filename"]
    assert call(client, "GET", "/sftp/file/report.bin", zone.cfg, params={"state": "new"}).status_code == 404
    r = call(client, "GET", f"/sftp/file/{moved}", zone.cfg, params={"state": "processing"})
    assert r.status_code == 200 and r.content == data


def test_unknown_untracked_and_bad_input(client, zone):
    zone.put("a.csv", b"a")
    call(client, "POST", "/sftp/scan", zone.cfg)
    r = call(client, "GET", "/sftp/file/nope.csv", zone.cfg, params={"state": "new"})
    assert r.status_code == 404 and r.json()["detail"] == "File nope.csv not found in new state."
    r = call(client, "GET", "/sftp/file/a.csv", zone.cfg, params={"state": "archive"})
    assert r.status_code == 400 and "state must be one of" in r.json()["detail"]
    r = call(client, "GET", "/sftp/file/a.csv", zone.cfg)
    assert r.status_code == 422
    for bad in ("%2e%2e", "x%2Fy", "x%00y"):
        r = call(client, "GET", f"/sftp/file/{bad}", zone.cfg, params={"state": "new"})
        assert r.status_code == 400 and "Invalid filename" in r.json()["detail"], (bad, r.text)
    # A registered file gone from the mirror says so.
    (zone.mirror / "new" / "a.csv").unlink()
    r = call(client, "GET", "/sftp/file/a.csv", zone.cfg, params={"state": "new"})
    assert r.status_code == 404 and "missing from the local mirror" in r.json()["detail"]


@pytest.mark.parametrize("who", ["anon_client"])
def test_needs_a_token(request, zone, who):
    c = request.getfixturevalue(who)
    assert call(c, "GET", "/sftp/file/a.csv", zone.cfg, params={"state": "new"}).status_code == 401
