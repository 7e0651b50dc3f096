"""Every /sftp endpoint takes {"source": name} or ?source=name instead of a full SFTPConfig."""

from __future__ import annotations

import pytest

from tests.sftp.helpers import call


def test_every_endpoint_by_source_body(client, zone, source):
    zone.put("a.csv", b"a,1\n")
    zone.put("b.csv", b"b,2\n")
    ref = {"source": source}
    full = zone.cfg

    assert call(client, "POST", "/sftp/connection-key", ref).json() == \
        call(client, "POST", "/sftp/connection-key", full).json() == {"connection_key": zone.key}
    r = call(client, "POST", "/sftp/scan", ref)
    assert r.status_code == 200, r.text
    assert sorted(f["path"] for f in r.json()["new_files"]) == ["a.csv", "b.csv"]
    assert call(client, "GET", "/sftp/status", ref).json() == call(client, "GET", "/sftp/status", full).json()
    assert len(call(client, "GET", "/sftp/new-files", ref).json()["new_files"]) == 2

    moved = call(client, "POST", "/sftp/mark-processing/a.csv", ref).json()["new_filename"]
    assert call(client, "POST", f"/sftp/mark-completed/{moved}", ref).status_code == 200
    moved_b = call(client, "POST", "/sftp/mark-processing/b.csv", ref).json()["new_filename"]
    assert call(client, "POST", f"/sftp/mark-error/{moved_b}", ref).status_code == 200
    tree = zone.remote_tree()
    assert f"completed/{moved}" in tree and f"error/{moved_b}" in tree

    assert call(client, "DELETE", "/sftp/clear-registry", ref).json() == {"message": "Registry cleared"}
    assert call(client, "GET", "/sftp/status", full).json()["total_tracked_files"] == 0


def test_every_endpoint_by_source_query(client, zone, source):
    zone.put("q.csv", b"q\n")
    q = {"source": source}
    assert client.post("/sftp/connection-key", params=q).json() == {"connection_key": zone.key}
    assert client.post("/sftp/scan", params=q).json()["total_files"] == 1
    assert client.get("/sftp/status", params=q).json()["total_tracked_files"] == 1
    assert [f["path"] for f in client.get("/sftp/new-files", params=q).json()["new_files"]] == ["q.csv"]
    moved = client.post("/sftp/mark-processing/q.csv", params=q).json()["new_filename"]
    assert client.post(f"/sftp/mark-error/{moved}", params=q).status_code == 200
    assert client.delete("/sftp/clear-registry", params=q).status_code == 200
    zone.put("r.csv", b"r\n")
    client.post("/sftp/scan", params=q)
    moved = client.post("/sftp/mark-processing/r.csv", params=q).json()["new_filename"]
    assert client.post(f"/sftp/mark-completed/{moved}", params=q).status_code == 200


@pytest.mark.parametrize(
    "path,method",
    [("/sftp/connection-key", "POST"), ("/sftp/scan", "POST"), ("/sftp/status", "GET"),
     ("/sftp/new-files", "GET"), ("/sftp/mark-processing/x.csv", "POST"),
     ("/sftp/mark-completed/x.csv", "POST"), ("/sftp/mark-error/x.csv", "POST"),
     ("/sftp/clear-registry", "DELETE")],
)
def test_unknown_source_is_404_naming_it_on_every_endpoint(client, path, method):
    r = call(client, method, path, {"source": "ghost"})
    assert r.status_code == 404 and r.json()["detail"] == "SFTP source 'ghost' not found"
    r = client.request(method, path, params={"source": "ghost"})
    assert r.status_code == 404 and "'ghost'" in r.json()["detail"]


def test_source_and_config_together_is_422(client, zone, source):
    r = call(client, "POST", "/sftp/scan", {"source": source, "host": "evil.example", "username": "x"})
    assert r.status_code == 422 and "either a source or an SFTPConfig" in r.json()["detail"]
    r = client.post("/sftp/scan", params={"source": source}, json={"source": "other"})
    assert r.status_code == 422 and "given twice" in r.json()["detail"]
    r = call(client, "POST", "/sftp/scan", {"source": 5})
    assert r.status_code == 422 and "must be a string" in r.json()["detail"]
    r = call(client, "POST", "/sftp/scan", {"source": "../etc"})
    assert r.status_code == 422 and "invalid source name" in r.json()["detail"]
    assert zone.mirror_tree() == {}


def test_redacted_config_posted_back_is_a_clear_422(client, zone, source):
    shown = client.get("/generic/sftp-config", params={"category": source}).json()[0]["config"]
    r = call(client, "POST", "/sftp/scan", shown)
    assert r.status_code == 422 and "redaction placeholder" in r.json()["detail"]


def test_non_admin_can_use_a_source_but_not_clear_it(client, user_client, zone, source):
    zone.put("u.csv")
    assert call(user_client, "POST", "/sftp/scan", {"source": source}).status_code == 200
    assert call(user_client, "DELETE", "/sftp/clear-registry", {"source": source}).status_code == 403


def test_scan_history_records_the_trigger(client, zone, source, settings):
    import asyncio

    from sqlalchemy import text

    from fileregistry.db import create_nullpool_engine

    call(client, "POST", "/sftp/scan", {"source": source})

    async def triggers():
        engine = create_nullpool_engine(settings.resolved_database_url)
        try:
            async with engine.connect() as c:
                return [r[0] for r in await c.execute(text("SELECT \"trigger\" FROM sftp_scans"))]
        finally:
            await engine.dispose()

    assert asyncio.run(triggers()) == ["api"]
