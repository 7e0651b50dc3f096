"""Start a real OpenSSH ``sshd`` on a free 127.0.0.1 port, with keys generated in a temp dir.

Used by the test suite and the benchmarks (also handy for testing a DAG locally).
"""

from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SSHD_CANDIDATES = ("/usr/sbin/sshd", "/usr/local/sbin/sshd", "/sbin/sshd")


def find_sshd() -> str | None:
    for c in SSHD_CANDIDATES:
        if os.access(c, os.X_OK):
            return c
    return shutil.which("sshd")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class SshdServer:
    host: str
    port: int
    username: str
    user_key_path: Path  # private key (ed25519) authorised for username
    user_key_text: str
    host_pubkey_line: str  # "ssh-ed25519 AAAA..."
    root: Path  # temp dir (a good place for remote_path trees)
    log_path: Path
    password_user: str | None = None
    password: str | None = None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


def _keygen(path: Path, kind: str = "ed25519", bits: int | None = None) -> None:
    args = ["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", str(path)]
    if bits:
        args += ["-b", str(bits)]
    subprocess.run(args, check=True)


def _wait_port(port: int, proc: subprocess.Popen, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited early with code {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
            if s.recv(4).startswith(b"SSH-"):
                return
        time.sleep(0.05)
    raise RuntimeError("sshd did not start listening in time")


PASSWORD_USER = "frtest"


def ensure_password_user(password: str) -> str | None:
    """As root, create (or reset) a local test user with a password. Returns None if not root."""
    if os.geteuid() != 0 or not shutil.which("useradd"):
        return None
    if subprocess.run(["id", PASSWORD_USER], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "-m", "-s", "/bin/sh", PASSWORD_USER], check=True, capture_output=True)
    subprocess.run(["chpasswd"], input=f"{PASSWORD_USER}:{password}\n", text=True, check=True)
    return PASSWORD_USER


@contextlib.contextmanager
def run_sshd(base: Path, *, password: str | None = None, extra_config: str = "") -> Iterator[SshdServer]:
    sshd = find_sshd()
    if not sshd:
        raise RuntimeError("OpenSSH sshd is not installed (apt-get install openssh-server)")
    base.mkdir(parents=True, exist_ok=True)
    os.chmod(base, 0o755)
    keys = base / "keys"
    keys.mkdir(exist_ok=True)
    os.chmod(keys, 0o700)
    host_key = keys / "host_ed25519"
    user_key = keys / "user_ed25519"
    _keygen(host_key)
    _keygen(user_key)
    auth_keys = keys / "authorized_keys"
    shutil.copy(user_key.with_suffix(".pub"), auth_keys)
    os.chmod(auth_keys, 0o600)
    root = base / "root"
    root.mkdir(exist_ok=True)
    os.chmod(root, 0o777)  # the password user writes here too

    password_user = ensure_password_user(password) if password else None
    username = getpass.getuser()
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation dir
    port = free_port()
    log_path = base / "sshd.log"
    config = base / "sshd_config"
    config.write_text(
        "\n".join(
            [
                "ListenAddress 127.0.0.1",
                f"HostKey {host_key}",
                f"PidFile {base / 'sshd.pid'}",
                f"AuthorizedKeysFile {auth_keys}",
                "PubkeyAuthentication yes",
                f"PasswordAuthentication {'yes' if password_user else 'no'}",
                "KbdInteractiveAuthentication no",
                "PermitRootLogin prohibit-password",
                "StrictModes no",
                "UsePAM no",
                "MaxStartups 100:30:200",
                "MaxSessions 50",
                "LogLevel INFO",
                "Subsystem sftp internal-sftp",
                extra_config,
                "",
            ]
        )
    )
    with open(log_path, "wb") as logf:
        proc = subprocess.Popen(
            [sshd, "-D", "-e", "-f", str(config), "-p", str(port)], stdout=logf, stderr=subprocess.STDOUT
        )
    try:
        _wait_port(port, proc)
        yield SshdServer(
            host="127.0.0.1",
            port=port,
            username=username,
            user_key_path=user_key,
            user_key_text=user_key.read_text(),
            host_pubkey_line=" ".join(host_key.with_suffix(".pub").read_text().split()[:2]),
            root=root,
            log_path=log_path,
            password_user=password_user,
            password=password if password_user else None,
        )
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
