"""Alation's own SDK (allie-sdk) against a real ``fileregistry serve`` process.

The server is started as the user would start it, so this also covers the first-start bootstrap:
the one-time admin refresh token is read from its stdout and handed to ``allie_sdk.Alation``.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

EXE = str(Path(sys.executable).parent / "fileregistry")
BOOT = re.compile(r"Created admin user 'admin' \(user_id (\d+)\)\. .*\n  (\S+)\n")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(env: dict[str, str], cwd: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = _free_port()
    proc = subprocess.Popen([EXE, "serve", "--port", str(port)], env=env, cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"server exited: {proc.stderr.read() if proc.stderr else ''}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)
        yield base, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _output(proc: subprocess.Popen[str]) -> tuple[str, str]:
    out = proc.stdout.read() if proc.stdout else ""
    err = proc.stderr.read() if proc.stderr else ""
    return out, err


@pytest.fixture
def server_env(tmp_path, db_url) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FILEREGISTRY_")}
    env["FILEREGISTRY_DATA_DIR"] = str(tmp_path / "data")
    env["FILEREGISTRY_DATABASE_URL"] = db_url
    return env


@pytest.mark.parametrize("id_type", [int, str])
def test_allie_sdk_logs_in_unchanged(server_env, tmp_path, id_type):
    import allie_sdk

    with serve(server_env, tmp_path) as (base, proc):
        # Bootstrap output comes before uvicorn starts, so it is complete by now.
        first = proc.stdout.readline() + proc.stdout.readline() + proc.stdout.readline()
        m = BOOT.search(first)
        assert m, first
        user_id, refresh = int(m.group(1)), m.group(2)
        assert "/integration/v1/createAPIAccessToken/" in first

        alation = allie_sdk.Alation(base, id_type(user_id), refresh)
        access = alation.access_token
        assert access and access != refresh

        me = alation.user.get_authenticated_user()  # GET /integration/v1/userinfo/ with its Token header
        assert me.id == user_id and me.username == "admin"
        assert alation.authentication.validate_access_token(access).token_status == "ACTIVE"
        r = httpx.get(base + "/api/v1/users/", headers={"Token": access})
        assert r.status_code == 200 and r.json()[0]["username"] == "admin"

        # A wrong refresh token makes the SDK raise, as it does against Alation.
        import requests

        with pytest.raises(requests.HTTPError) as exc:
            allie_sdk.Alation(base, user_id, refresh[:-2] + "xx")
        assert exc.value.response.status_code == 401
        assert exc.value.response.json() == {"detail": "Refresh token provided is invalid.", "code": "401000"}
    out, err = _output(proc)
    assert refresh not in out and refresh not in err and access not in err and access not in out


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_bootstrap_only_once(server_env, tmp_path):
    with serve(server_env, tmp_path) as (_base, proc):
        pass
    out, _ = _output(proc)
    assert BOOT.search(out), out
    with serve(server_env, tmp_path) as (_base, proc):
        pass
    out, err = _output(proc)
    assert "Created admin user" not in out and "refresh token" not in out.lower(), out
