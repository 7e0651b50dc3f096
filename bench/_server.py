"""Start a real fileregistry server (uvicorn subprocess) with an admin access token, for benchmarks."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from fileregistry.testing.sshd import free_port

BIN = Path(sys.executable).parent / "fileregistry"


@dataclass
class Server:
    url: str
    token: str
    pid: int

    def peak_rss_mb(self) -> float:
        return vm_hwm_mb(self.pid)


def vm_hwm_mb(pid: int | str = "self") -> float:
    """Peak resident set size (VmHWM) of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def install_key(key: Path, data_dir: Path, name: str = "bench_ed25519") -> str:
    """Copy a private key into ``<data_dir>/keys`` (the default FILEREGISTRY_SFTP_KEY_DIR, the only place an
    SFTP config's ``key_path`` may point to) and return the ``key_path`` to use: its name, relative to it."""
    keys = data_dir / "keys"
    keys.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(key, keys / name)
    os.chmod(keys / name, 0o600)
    return name


def _cli(env: dict, *args: str) -> str:
    r = subprocess.run([str(BIN), *args], env=env, capture_output=True, text=True, check=True)
    return r.stdout


@contextlib.contextmanager
def run_server(data_dir: Path, database_url: str | None = None, extra_env: dict | None = None) -> Iterator[Server]:
    env = dict(os.environ, FILEREGISTRY_DATA_DIR=str(data_dir), FILEREGISTRY_LOG_LEVEL="WARNING")
    if database_url:
        env["FILEREGISTRY_DATABASE_URL"] = database_url
    env.update(extra_env or {})
    data_dir.mkdir(parents=True, exist_ok=True)
    _cli(env, "db", "upgrade")
    user_id = int(re.findall(r"\d+", _cli(env, "user", "create", "bench", "--admin"))[0])
    refresh = _cli(env, "token", "create", "bench", "--name", "bench").strip().splitlines()[-1].strip()
    port = free_port()
    proc = subprocess.Popen([str(BIN), "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start: {proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.1)
        r = httpx.post(f"{url}/integration/v1/createAPIAccessToken/",
                       json={"refresh_token": refresh, "user_id": user_id}, timeout=10)
        r.raise_for_status()
        yield Server(url=url, token=r.json()["api_access_token"], pid=proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
