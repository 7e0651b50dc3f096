"""/generic/sftp-config: create, replace, read (redacted or in full), delete; bad input changes nothing."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from fileregistry.db import create_nullpool_engine

SECRET_PW = "pw-Zq8!never-shown"
CFG = {"host": "sftp.example.com", "username": "u", "password": SECRET_PW, "port": 2222, "remote_path": "/in"}


def _rows(settings) -> list[dict]:
    async def go():
        engine = create_nullpool_engine(settings.resolved_database_url)
        try:
            async with engine.connect() as c:
                return [dict(r._mapping) for r in await c.execute(text("SELECT * FROM sftp_sources ORDER BY name"))]
        finally:
            await engine.dispose()

    return asyncio.run(go())


def test_put_get_list_delete(client):
    r = client.put("/generic/sftp-config/acme", json={"config": CFG, "scan_interval_seconds": 300})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["category"] == body["source"] == "acme"
    assert body["config"]["password"] == "********" and body["config"]["private_key"] is None
    assert body["config"]["host"] == "sftp.example.com" and body["config"]["port"] == 2222
    assert body["scan_interval_seconds"] == 300

    client.put("/generic/sftp-config/beta", json={"config": {**CFG, "host": "b.example"}})
    every = client.get("/generic/sftp-config").json()
    assert [c["category"] for c in every] == ["acme", "beta"]
    assert every[1]["scan_interval_seconds"] is None
    one = client.get("/generic/sftp-config", params={"category": "beta"}).json()
    assert len(one) == 1 and one[0]["config"]["host"] == "b.example"

    full = client.get("/generic/sftp-config", params={"category": "acme", "include_secrets": "true"}).json()
    assert full[0]["config"]["password"] == SECRET_PW

    # Replace: the new config wins; the interval can be removed.
    r = client.put("/generic/sftp-config/acme", json={"config": {**CFG, "remote_path": "/other"}})
    assert r.json()["config"]["remote_path"] == "/other" and r.json()["scan_interval_seconds"] is None

    assert client.delete("/generic/sftp-config/acme").json() == {"message": "SFTP source 'acme' deleted"}
    assert [c["category"] for c in client.get("/generic/sftp-config").json()] == ["beta"]
    r = client.delete("/generic/sftp-config/acme")
    assert r.status_code == 404 and r.json()["detail"] == "SFTP source 'acme' not found"


def test_unknown_category_is_404_naming_it(client):
    r = client.get("/generic/sftp-config", params={"category": "nope"})
    assert r.status_code == 404 and "'nope'" in r.json()["detail"]


def test_secrets_are_encrypted_at_rest(client, settings):
    key_text = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAA-fake\n-----END OPENSSH PRIVATE KEY-----\n"
    client.put("/generic/sftp-config/acme", json={"config": {**CFG, "private_key": key_text}})
    (row,) = _rows(settings)
    raw = " ".join(str(v) for v in row.values())
    assert SECRET_PW not in raw and "b3BlbnNzaC1rZXktdjEAAAA" not in raw
    assert row["secrets_encrypted"].startswith("gAAAAA")  # a Fernet token
    full = client.get("/generic/sftp-config", params={"include_secrets": "true"}).json()[0]["config"]
    assert full["password"] == SECRET_PW and full["private_key"] == key_text


def test_non_admins_read_redacted_and_cannot_write(client, user_client):
    client.put("/generic/sftp-config/acme", json={"config": CFG})
    r = user_client.get("/generic/sftp-config")
    assert r.status_code == 200 and r.json()[0]["config"]["password"] == "********"
    r = user_client.get("/generic/sftp-config", params={"include_secrets": "true"})
    assert r.status_code == 403 and "admin" in r.json()["detail"]
    assert user_client.put("/generic/sftp-config/acme", json={"config": CFG}).status_code == 403
    assert user_client.delete("/generic/sftp-config/acme").status_code == 403
    assert client.get("/generic/sftp-config").json()[0]["config"]["host"] == "sftp.example.com"


def test_no_token_is_401(anon_client):
    assert anon_client.get("/generic/sftp-config").status_code == 401
    assert anon_client.put("/generic/sftp-config/x", json={"config": CFG}).status_code == 401


def test_redacted_placeholder_keeps_the_stored_secret(client):
    client.put("/generic/sftp-config/acme", json={"config": CFG})
    shown = client.get("/generic/sftp-config", params={"category": "acme"}).json()[0]
    edited = {**shown["config"], "port": 2200}  # password is "********"
    r = client.put("/generic/sftp-config/acme", json={"config": edited})
    assert r.status_code == 200, r.text
    full = client.get("/generic/sftp-config", params={"include_secrets": "true"}).json()[0]["config"]
    assert full["password"] == SECRET_PW and full["port"] == 2200


def test_placeholder_without_stored_secret_is_rejected(client):
    r = client.put("/generic/sftp-config/fresh", json={"config": {**CFG, "password": "********"}})
    assert r.status_code == 422 and "redaction placeholder" in r.json()["detail"]
    assert client.get("/generic/sftp-config").json() == []


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"", "JSON body is required"),
        (b"{not json", "not valid JSON"),
        (b"[1]", "must be a JSON object"),
        (b'{"scan_interval_seconds": 5}', "config: field required"),
        (b'{"config": {"host": "h", "username": "u"}}', "one authentication method is required"),
        (b'{"config": {"host": "h", "username": "u", "password": "p", "port": 70000}}', "config.port"),
        (b'{"config": {"host": "h", "username": "u", "password": "p"}, "scan_interval_seconds": 0}',
         "scan_interval_seconds"),
        (b'{"config": {"host": "h", "username": "u", "password": "p"}, "scan_interval_seconds": "60"}',
         "scan_interval_seconds"),
        (b'{"config": {"host": "h", "username": "u", "password": "p"}, "extra": 1}', "unknown fields extra"),
    ],
)
def test_bad_bodies_are_422_and_change_nothing(client, body, needle):
    client.put("/generic/sftp-config/keep", json={"config": CFG})
    r = client.put("/generic/sftp-config/keep", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert needle in r.json()["detail"]
    assert '"p"' not in r.text and SECRET_PW not in r.text
    kept = client.get("/generic/sftp-config", params={"include_secrets": "true"}).json()
    assert [c["config"] for c in kept] == [{**CFG, "key_path": None, "private_key": None, "host_key": None}]


def test_port_error_does_not_echo_the_password(client):
    r = client.put("/generic/sftp-config/x", json={"config": {**CFG, "port": "abc"}})
    assert r.status_code == 422 and SECRET_PW not in r.text


@pytest.mark.parametrize("name", ["-lead", "has space", "x" * 129, "semi;colon", "dot..", "ünï"])
def test_bad_source_names_are_rejected(client, name):
    if name == "dot..":  # dots are fine inside a name
        assert client.put(f"/generic/sftp-config/{name}", json={"config": CFG}).status_code == 200
        return
    r = client.put(f"/generic/sftp-config/{name}", json={"config": CFG})
    assert r.status_code == 422 and "invalid source name" in r.json()["detail"]
    assert client.get("/generic/sftp-config").json() == []
