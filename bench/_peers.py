"""Peer tools timed against the same OpenSSH server: lftp, rclone, OpenSSH sftp."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from fileregistry.testing.sshd import SshdServer

SSH_OPTS = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"]


def _timed(cmd: list[str], env: dict | None = None, input_text: str | None = None) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=env, input=input_text, text=True, capture_output=True)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({r.returncode}): {r.stderr[-500:]}")
    return dt


def _fresh(dest: Path) -> Path:
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    return dest


def lftp_mirror(s: SshdServer, remote_dir: str, dest: Path, parallel: int = 8) -> float | None:
    if not shutil.which("lftp"):
        return None
    _fresh(dest)
    connect = "ssh -a -x -i {} {}".format(s.user_key_path, " ".join(SSH_OPTS))
    script = (
        f"set sftp:connect-program '{connect}'; set net:max-retries 1; "
        f"mirror --parallel={parallel} {remote_dir} {dest}; quit"
    )
    return _timed(["lftp", "-p", str(s.port), "-u", f"{s.username},", "-e", script, f"sftp://{s.host}"])


def rclone_copy(s: SshdServer, remote_dir: str, dest: Path) -> float | None:
    if not shutil.which("rclone"):
        return None
    _fresh(dest)
    env = dict(os.environ)
    env.update(
        RCLONE_CONFIG_SRC_TYPE="sftp",
        RCLONE_CONFIG_SRC_HOST=s.host,
        RCLONE_CONFIG_SRC_PORT=str(s.port),
        RCLONE_CONFIG_SRC_USER=s.username,
        RCLONE_CONFIG_SRC_KEY_FILE=str(s.user_key_path),
        RCLONE_CONFIG_SRC_SHELL_TYPE="none",
        RCLONE_CONFIG_SRC_DISABLE_HASHCHECK="true",
        RCLONE_CONFIG=os.devnull,
    )
    return _timed(["rclone", "copy", f"src:{remote_dir}", str(dest)], env=env)


def sftp_batch(s: SshdServer, commands: str, extra: list[str] | None = None) -> float:
    with tempfile.NamedTemporaryFile("w", suffix=".batch", delete=False) as f:
        f.write(commands)
        batch = f.name
    try:
        return _timed(
            ["sftp", "-q", "-b", batch, "-i", str(s.user_key_path), "-P", str(s.port), *SSH_OPTS, *(extra or []),
             f"{s.username}@{s.host}"]
        )
    finally:
        os.unlink(batch)


def sftp_get_r(s: SshdServer, remote_dir: str, dest: Path) -> float:
    _fresh(dest)
    return sftp_batch(s, f"get -r {remote_dir} {dest}\n")


def sftp_get_one(s: SshdServer, remote_file: str, dest: Path, cipher: str = "aes128-gcm@openssh.com") -> float:
    _fresh(dest)
    return sftp_batch(s, f"get {remote_file} {dest}/\n", extra=["-c", cipher])


def sftp_ls_l(s: SshdServer, remote_dir: str) -> float:
    return sftp_batch(s, f"ls -l {remote_dir}\n")
