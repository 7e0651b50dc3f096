"""Metrics, readiness, structured logs and request ids (issue 5), against real databases and sshd."""

from __future__ import annotations

import asyncio
import io
import json
import re
import logging
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from tests.sftp.helpers import Zone, call
from tests.vfs.conftest import SEED_BODY, Vfs

from fileregistry.app import create_app
from fileregistry.db import create_engine_for, create_nullpool_engine, session_factory
from fileregistry.migrate import head_revision
from fileregistry.observability.logs import REDACTED, JsonFormatter, TextFormatter, redact, request_id_var
from fileregistry.observability.metrics import record_scan
from fileregistry.observability.middleware import incoming_request_id
from fileregistry.vfs.service import KIND as VFS_UPLOAD

# --------------------------------------------------------------------------- helpers


def scrape(client) -> dict[tuple[str, frozenset], float]:
    """/metrics as {(sample name, frozenset(labels)): value}."""
    r = client.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    out: dict[tuple[str, frozenset], float] = {}
    for fam in text_string_to_metric_families(r.text):
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def series(samples, name: str) -> dict[frozenset, float]:
    return {labels: v for (n, labels), v in samples.items() if n == name}


@pytest.fixture
def zone(sshd, settings) -> Zone:
    return Zone(sshd, settings.resolved_mirror_dir)


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """Every log record at INFO and above, formatted as the server formats it (JSON lines)."""
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setFormatter(JsonFormatter())
    # The test's own HTTP client (httpx, under TestClient) logs its URLs; it is not the server.
    handler.addFilter(lambda record: not record.name.startswith("httpx"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield buf
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- /metrics


def test_metrics_after_a_scan_a_move_and_an_upload(client, zone):
    zone.put("a.csv", b"a" * 100)
    zone.put("b.csv", b"b" * 200)
    zone.put("c.csv", b"c" * 300)
    r = call(client, "POST", "/sftp/scan", zone.cfg)
    assert r.status_code == 200, r.text
    assert len(r.json()["new_files"]) == 3
    r = call(client, "POST", "/sftp/mark-processing/a.csv", zone.cfg)
    assert r.status_code == 200, r.text
    processing = r.json()["new_filename"]
    r = call(client, "POST", f"/sftp/mark-error/{processing}", zone.cfg)
    assert r.status_code == 200, r.text
    r = call(client, "POST", "/sftp/mark-processing/b.csv", zone.cfg)
    assert r.status_code == 200, r.text

    vfs = Vfs(client)
    assert vfs.run(vfs.create("fs-metrics"), SEED_BODY)["status"] == "successful"

    m = scrape(client)
    key = zone.key  # no stored source watches this zone: the label is the connection key
    assert series(m, "fileregistry_sftp_files") == {
        frozenset({"source": key, "state": "new"}.items()): 1.0,
        frozenset({"source": key, "state": "processing"}.items()): 1.0,
        frozenset({"source": key, "state": "completed"}.items()): 0.0,
        frozenset({"source": key, "state": "error"}.items()): 1.0,
    }
    age = value(m, "fileregistry_sftp_oldest_new_file_age_seconds", source=key)
    assert 0.0 <= age < 120
    assert value(m, "fileregistry_database_up") == 1.0
    assert series(m, "fileregistry_jobs") == {
        frozenset({"kind": VFS_UPLOAD, "status": "running"}.items()): 0.0,
        frozenset({"kind": VFS_UPLOAD, "status": "successful"}.items()): 1.0,
        frozenset({"kind": VFS_UPLOAD, "status": "failed"}.items()): 0.0,
    }
    # Process counters, recorded by monitor.scan (the key is unique to this test's zone).
    assert value(m, "fileregistry_sftp_scans_total", source=key, outcome="ok") == 1.0
    assert value(m, "fileregistry_sftp_scan_duration_seconds_count", source=key, outcome="ok") == 1.0
    assert value(m, "fileregistry_sftp_downloaded_bytes_total", source=key) == 600.0
    # HTTP metrics are labelled by route template, not by the raw path.
    assert value(m, "fileregistry_http_requests_total", method="POST",
                 route="/sftp/mark-processing/{filename}", status="200") >= 2
    assert not any("a.csv" in dict(labels).get("route", "") for (_, labels) in m)

    # The age grows while the file waits; no new file -> 0, not a missing series.
    time.sleep(1.1)
    assert value(scrape(client), "fileregistry_sftp_oldest_new_file_age_seconds", source=key) >= age + 1.0
    r = call(client, "POST", "/sftp/mark-processing/c.csv", zone.cfg)
    assert r.status_code == 200, r.text
    m = scrape(client)
    assert value(m, "fileregistry_sftp_oldest_new_file_age_seconds", source=key) == 0.0
    assert value(m, "fileregistry_sftp_files", source=key, state="new") == 0.0


def test_metrics_label_is_the_stored_source_name(client, zone):
    zone.put("x.csv", b"x")
    name = f"partner-{secrets.token_hex(4)}"
    r = client.put(f"/generic/sftp-config/{name}", json={"config": zone.cfg, "scan_interval_seconds": None})
    assert r.status_code == 200, r.text
    m = scrape(client)
    # A stored source with nothing registered yet still has its four series.
    assert {dict(lbl)["state"]: v for lbl, v in series(m, "fileregistry_sftp_files").items()
            if dict(lbl)["source"] == name} == {"new": 0.0, "processing": 0.0, "completed": 0.0, "error": 0.0}

    r = client.post("/sftp/scan", json={"source": name})
    assert r.status_code == 200, r.text
    m = scrape(client)
    assert value(m, "fileregistry_sftp_files", source=name, state="new") == 1.0
    assert value(m, "fileregistry_sftp_scans_total", source=name, outcome="ok") == 1.0
    assert not any(dict(lbl).get("source") == zone.key for (_, lbl) in m)


def test_failed_scan_is_counted_as_an_error_outcome(client, zone):
    cfg = dict(zone.cfg, remote_path=str(zone.path / "missing"))
    r = call(client, "POST", "/sftp/scan", cfg)
    assert r.status_code == 404, r.text
    key = f"sftp_connection_{cfg['host']}_{cfg['remote_path']}"
    m = scrape(client)
    assert value(m, "fileregistry_sftp_scans_total", source=key, outcome="error") == 1.0
    assert value(m, "fileregistry_sftp_scans_total", source=key, outcome="ok") == 0.0


def test_record_scan_feeds_counters_and_histogram(client):
    src = f"unit-{secrets.token_hex(4)}"
    record_scan(src, 0.3, 1000, True)
    record_scan(src, 2.0, 0, False)
    record_scan(src, 0.01, 24, True)
    m = scrape(client)
    assert value(m, "fileregistry_sftp_scans_total", source=src, outcome="ok") == 2.0
    assert value(m, "fileregistry_sftp_scans_total", source=src, outcome="error") == 1.0
    assert value(m, "fileregistry_sftp_downloaded_bytes_total", source=src) == 1024.0
    assert value(m, "fileregistry_sftp_scan_duration_seconds_bucket", source=src, outcome="ok", le="0.5") == 2.0
    assert value(m, "fileregistry_sftp_scan_duration_seconds_bucket", source=src, outcome="ok", le="0.1") == 1.0
    assert value(m, "fileregistry_sftp_scan_duration_seconds_sum", source=src, outcome="error") == 2.0


def test_errors_total_by_kind(client, anon_client):
    before = scrape(client)
    assert client.get("/api/v1/filesystem/987654/").status_code == 404  # NotFound
    assert client.get("/api/v1/filesystem/987654/").status_code == 404
    assert anon_client.get("/api/v1/filesystem/").status_code == 401  # Unauthorized
    assert client.get("/api/v1/filesystem/not-a-number/").status_code == 422  # request validation
    assert call(client, "POST", "/sftp/connection-key", {"host": "h"}).status_code == 422  # InvalidInput
    after = scrape(client)

    def delta(kind: str) -> float:
        return value(after, "fileregistry_errors_total", kind=kind) - value(before, "fileregistry_errors_total",
                                                                             kind=kind)

    assert delta("NotFound") == 2.0
    assert delta("Unauthorized") == 1.0
    assert delta("validation") == 1.0
    assert delta("InvalidInput") == 1.0


def test_unhandled_error_counts_as_internal_and_is_logged_with_its_request_id(settings, captured_logs):
    app = create_app(settings)

    @app.get("/test-boom")
    async def boom() -> None:
        raise RuntimeError("kaboom")

    with TestClient(app, raise_server_exceptions=False) as c:
        before = value(scrape(c), "fileregistry_errors_total", kind="internal")
        r = c.get("/test-boom", headers={"X-Request-ID": "boom-1"})
        assert r.status_code == 500
        assert r.json() == {"detail": "internal error (request id boom-1)"} and "kaboom" not in r.text
        r = c.get("/test-boom")  # no id sent: the one the server made up, as in its logs
        assert re.fullmatch(r"internal error \(request id [0-9a-f]{32}\)", r.json()["detail"]), r.text
        before += 1
        assert value(scrape(c), "fileregistry_errors_total", kind="internal") == before + 1
    lines = [json.loads(line) for line in captured_logs.getvalue().splitlines()]
    err = [x for x in lines if x["logger"] == "fileregistry.errors"]
    assert len(err) == 2 and err[0]["request_id"] == "boom-1" and "kaboom" in err[0]["exc"]
    access = [x for x in lines if x["logger"] == "fileregistry.access" and x["request_id"] == "boom-1"]
    assert access and access[0]["status"] == 500 and access[0]["route"] == "/test-boom"


def test_metrics_and_readyz_need_no_token(anon_client):
    assert anon_client.get("/metrics").status_code == 200
    assert anon_client.get("/readyz").status_code == 200


def test_unmatched_paths_share_one_route_label(client):
    for i in range(3):
        assert client.get(f"/no-such-page-{i}").status_code == 404
    m = scrape(client)
    assert value(m, "fileregistry_http_requests_total", method="GET", route="unmatched", status="404") >= 3
    assert not any("no-such-page" in str(lbl) for (_, lbl) in m)


# --------------------------------------------------------------------------- /readyz


def test_readyz_ready(client):
    r = client.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"status": "ready"}


def test_readyz_schema_behind(client, settings):
    """The schema says it is at an older revision (as after a rollback of the code's upgrade)."""
    head = head_revision()

    async def stamp(rev: str) -> None:
        engine = create_nullpool_engine(settings.resolved_database_url)
        try:
            async with engine.begin() as conn:
                await conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": rev})
        finally:
            await engine.dispose()

    asyncio.run(stamp("0003_vfs_jobs"))
    try:
        r = client.get("/readyz")
        assert r.status_code == 503
        assert r.json() == {"status": "unready", "detail": f"schema at revision 0003_vfs_jobs, head is {head}"}
    finally:
        asyncio.run(stamp(head))  # the PostgreSQL database is shared by the test session
    assert client.get("/readyz").status_code == 200


def test_readyz_database_unreachable(client, app):
    """The database goes away under a running app: 503 naming the exception class, never the URL."""
    password = "pw-" + secrets.token_hex(8)
    dead = create_engine_for(f"postgresql+asyncpg://fr_user:{password}@127.0.0.1:{free_port()}/nowhere", pool_size=1)
    engine, sessions = app.state.engine, app.state.sessions
    app.state.engine, app.state.sessions = dead, session_factory(dead)
    try:
        r = client.get("/readyz")
        assert r.status_code == 503
        body = r.json()
        assert body["status"] == "unready"
        assert body["detail"].startswith("database unreachable: ")
        assert password not in r.text and "fr_user" not in r.text and "nowhere" not in r.text
        # /metrics keeps answering: counters still served, the database gauge says 0.
        m = scrape(client)
        assert value(m, "fileregistry_database_up") == 0.0
        assert not series(m, "fileregistry_sftp_files")
    finally:
        app.state.engine, app.state.sessions = engine, sessions
        asyncio.run(dead.dispose())
    assert client.get("/readyz").status_code == 200


# --------------------------------------------------------------------------- logs and request ids


def test_request_id_returned_and_logged_and_no_secret_in_logs(client, admin_token, captured_logs):
    password = "pw-" + secrets.token_hex(12)
    cfg = {"host": "127.0.0.1", "port": free_port(), "username": "u", "password": password,
           "remote_path": "/upload"}
    r = client.post("/sftp/connection-key", json=cfg, headers={"X-Request-ID": "req-abc.123_x"})
    assert r.status_code == 200, r.text
    assert r.headers["x-request-id"] == "req-abc.123_x"
    # A scan that fails to connect, with the secret in the body and in the query string.
    r = client.post(f"/sftp/scan?password={password}", json=cfg)
    assert r.status_code in (502, 504), r.text
    generated = r.headers["x-request-id"]
    assert len(generated) == 32 and int(generated, 16) >= 0  # uuid4 hex
    # A 422 of a body carrying the password.
    r = client.post("/sftp/connection-key", json={"password": password, "host": ""})
    assert r.status_code == 422

    logs = captured_logs.getvalue()
    lines = [json.loads(line) for line in logs.splitlines()]  # every line is one JSON object
    for line in lines:
        assert {"timestamp", "level", "logger", "message", "request_id"} <= set(line)
    access = [x for x in lines if x["logger"] == "fileregistry.access"]
    first = next(x for x in access if x["request_id"] == "req-abc.123_x")
    assert first["method"] == "POST" and first["route"] == "/sftp/connection-key" and first["status"] == 200
    assert first["duration_ms"] >= 0
    scan = next(x for x in access if x["request_id"] == generated)
    assert scan["path"] == "/sftp/scan" and scan["status"] in (502, 504)
    assert password not in logs
    assert admin_token not in logs
    assert "password=" not in logs


def test_insane_request_ids_are_replaced(client):
    for bad in (b"a" * 129, b"has space", b"semi;colon", b"x%0Ay", "\u00fcn\u00ef".encode()):
        rid = client.get("/healthz", headers={"X-Request-ID": bad}).headers["x-request-id"]
        assert rid.encode() != bad and len(rid) == 32 and int(rid, 16) >= 0
    assert client.get("/healthz", headers={"X-Request-ID": "a" * 128}).headers["x-request-id"] == "a" * 128


def test_incoming_request_id_rules():
    assert incoming_request_id([(b"x-request-id", b"abc-DEF_1.2")]) == "abc-DEF_1.2"
    assert incoming_request_id([(b"X-Request-Id", b"ok")]) == "ok"
    assert incoming_request_id([(b"x-request-id", b"")]) is None
    assert incoming_request_id([(b"x-request-id", b"a" * 129)]) is None
    assert incoming_request_id([(b"x-request-id", b"a/b")]) is None
    assert incoming_request_id([(b"x-request-id", "é".encode())]) is None
    assert incoming_request_id([(b"token", b"secret")]) is None


def test_formatter_redacts_secret_fields_and_carries_request_id():
    logger = logging.getLogger("fileregistry.test_redaction")
    record = logger.makeRecord(
        logger.name, logging.INFO, __file__, 1, "configured %s", ("thing",), None,
        extra={"password": "hunter2", "cfg": {"host": "h", "private_key": "-----BEGIN", "nested": [{"token": "t"}]},
               "api_secret": "s", "count": 3},
    )
    tok = request_id_var.set("rid-1")
    try:
        line = json.loads(JsonFormatter().format(record))
        text_line = TextFormatter().format(record)
    finally:
        request_id_var.reset(tok)
    assert line["message"] == "configured thing" and line["request_id"] == "rid-1" and line["level"] == "INFO"
    assert line["password"] == REDACTED and line["api_secret"] == REDACTED and line["count"] == 3
    assert line["cfg"] == {"host": "h", "private_key": REDACTED, "nested": [{"token": REDACTED}]}
    assert line["timestamp"].endswith("Z")
    for secret in ("hunter2", "-----BEGIN", '"t"'):
        assert secret not in json.dumps(line) and secret not in text_line
    assert "[rid-1]" in text_line and "configured thing" in text_line
    assert redact({"Authorization": "Bearer x"}) == {"Authorization": REDACTED}
    # Whatever an extra field holds, the line is still written.
    odd = logger.makeRecord(logger.name, logging.INFO, __file__, 1, "odd", (), None,
                            extra={"by_id": {1: "a"}, "big": 2**70, "obj": object()})
    line = json.loads(JsonFormatter().format(odd))
    assert line["by_id"] == {"1": "a"} and line["big"] == 2**70 and line["obj"].startswith("<object")


# --------------------------------------------------------------------------- the real server


def test_serve_writes_json_logs_with_request_ids(tmp_path):
    """``fileregistry serve``: every stderr line is JSON, our access line replaces uvicorn's."""
    port = free_port()
    env = dict(os.environ, FILEREGISTRY_DATA_DIR=str(tmp_path / "data"), FILEREGISTRY_LOG_FORMAT="json",
               FILEREGISTRY_LOG_LEVEL="INFO", FILEREGISTRY_SCHEDULER_ENABLED="false")
    env.pop("FILEREGISTRY_DATABASE_URL", None)
    env.pop("FILEREGISTRY_MIRROR_DIR", None)
    cli = Path(sys.executable).with_name("fileregistry")
    err_path = tmp_path / "stderr.log"
    with err_path.open("wb") as err:
        proc = subprocess.Popen([str(cli), "serve", "--port", str(port)], env=env, stdout=subprocess.PIPE,
                                stderr=err)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    r = httpx.get(f"http://127.0.0.1:{port}/readyz", headers={"X-Request-ID": "probe-1"},
                                  timeout=2)
                    break
                except httpx.TransportError:
                    assert proc.poll() is None, err_path.read_text()
                    assert time.monotonic() < deadline, "server did not start"
                    time.sleep(0.1)
            assert r.status_code == 200 and r.headers["x-request-id"] == "probe-1"
            r = httpx.get(f"http://127.0.0.1:{port}/sftp/status?secret=qs-value",
                          headers={"TOKEN": "header-secret-value", "X-Request-ID": "call-1"}, timeout=5)
            assert r.status_code == 401 and r.headers["x-request-id"] == "call-1"
        finally:
            proc.terminate()
            stdout, _ = proc.communicate(timeout=15)
    logs = err_path.read_text()
    lines = [json.loads(line) for line in logs.splitlines() if line.strip()]
    call_1 = [x for x in lines if x["request_id"] == "call-1" and x["logger"] == "fileregistry.access"]
    assert len(call_1) == 1
    assert call_1[0]["route"] == "/sftp/status" and call_1[0]["status"] == 401 and call_1[0]["level"] == "INFO"
    assert not any(x["request_id"] == "probe-1" for x in lines)  # successful probes log at DEBUG only
    assert not any(x["logger"] == "uvicorn.access" for x in lines)
    assert any(x["logger"].startswith("uvicorn") for x in lines)  # uvicorn's own lines go through us too
    assert "qs-value" not in logs and "header-secret-value" not in logs
    assert b"refresh token" in stdout  # the one-time bootstrap token goes to stdout, never to the log
    token = stdout.decode().split("shown only this once:\n", 1)[1].split()[0]
    assert token not in logs
