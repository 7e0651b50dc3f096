"""Alation's own SDK (allie-sdk) against a real ``fileregistry serve`` process.

The server is started as the user would start it, so this also covers the first-start bootstrap:
the one-time admin refresh token is read from its stdout and handed to ``allie_sdk.Alation``.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

EXE = str(Path(sys.executable).parent / "fileregistry")
BOOT = re.compile(r"Created admin user 'admin' \(user_id (\d+)\)\. .*\n  (\S+)\n")


class Server:
    """A ``fileregistry serve --port 0`` process; its output is collected by reader threads."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        # Port 0 and the port read back from uvicorn's banner: no free-port race with other
        # processes on this machine.
        self.proc = subprocess.Popen([EXE, "serve", "--port", "0"], env=env, cwd=cwd, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.out: list[str] = []
        self.err: list[str] = []
        self._threads = [threading.Thread(target=self._pump, args=(f, sink), daemon=True)
                         for f, sink in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))]
        for t in self._threads:
            t.start()

    @staticmethod
    def _pump(stream, sink: list[str]) -> None:
        for line in stream:
            sink.append(line)

    def wait_ready(self, timeout: float = 90) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.err):
                m = re.search(r"Uvicorn running on (http://127\.0\.0\.1:\d+)", line)
                if m:
                    return m.group(1)
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"server not ready: {''.join(self.err)}")

    def stop(self) -> tuple[str, str]:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for t in self._threads:
            t.join(timeout=5)
        return "".join(self.out), "".join(self.err)


@contextlib.contextmanager
def serve(env: dict[str, str], cwd: Path) -> Iterator[tuple[str, Server]]:
    server = Server(env, cwd)
    try:
        yield server.wait_ready(), server
    finally:
        server.stop()


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
        # Bootstrap output is written before uvicorn starts; the reader thread may lag a little.
        deadline = time.monotonic() + 10
        while not (m := BOOT.search(first := "".join(proc.out))) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert m, (first, "".join(proc.err))
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
            allie_sdk.Alation(base, user_id, refresh + "x")
        assert exc.value.response.status_code == 401
        assert exc.value.response.json() == {"detail": "Refresh token provided is invalid.", "code": "401000"}
    out, err = proc.stop()
    assert refresh not in out.replace(first, "") and refresh not in err and access not in err and access not in out


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_bootstrap_only_once(server_env, tmp_path):
    with serve(server_env, tmp_path) as (_base, proc):
        pass
    out, _ = proc.stop()
    assert BOOT.search(out), out
    with serve(server_env, tmp_path) as (_base, proc):
        pass
    out, err = proc.stop()
    assert "Created admin user" not in out and "refresh token" not in out.lower(), out
