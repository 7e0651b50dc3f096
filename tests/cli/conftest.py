"""Fixtures of the CLI tests: ``fileregistry`` run as a subprocess on the test database.

``cli`` runs ``python -m fileregistry.cli ...`` with FILEREGISTRY_DATA_DIR / FILEREGISTRY_DATABASE_URL
(and the mirror dir) of the ``settings`` fixture, so the ``client`` fixture's app sees what the CLI did.
Every call's stdout and stderr are checked for the secrets registered in ``cli.secrets`` and for
tracebacks.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.sftp.helpers import Zone


def cli_env(settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FILEREGISTRY_")}
    env.update(
        FILEREGISTRY_DATA_DIR=str(settings.data_dir),
        FILEREGISTRY_DATABASE_URL=settings.database_url.get_secret_value(),
        FILEREGISTRY_MIRROR_DIR=str(settings.mirror_dir),
        FILEREGISTRY_SFTP_CONNECT_TIMEOUT="5",
        FILEREGISTRY_SFTP_OP_TIMEOUT="10",
        FILEREGISTRY_LOG_FORMAT="text",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


class Cli:
    def __init__(self, settings, cwd: Path) -> None:
        self.settings = settings
        self.cwd = cwd
        self.secrets: list[str] = []
        self.env = cli_env(settings)

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "fileregistry.cli", *args]

    def check_output(self, text: str) -> None:
        assert "Traceback" not in text, text
        for s in self.secrets:
            assert s not in text, "a secret appeared in the CLI's output"

    def __call__(self, *args: str, stdin: str | None = None, ok: bool = True, env: dict | None = None,
                 timeout: float = 120) -> subprocess.CompletedProcess[str]:
        p = subprocess.run(self.argv(*args), input=stdin, capture_output=True, text=True,
                           env={**self.env, **(env or {})}, cwd=self.cwd, timeout=timeout)
        self.check_output(p.stdout + p.stderr)
        if ok:
            assert p.returncode == 0, f"{args}: exit {p.returncode}\n{p.stdout}\n{p.stderr}"
        return p

    def fails(self, *args: str, stdin: str | None = None, env: dict | None = None) -> str:
        """Run a command that must fail: exit 1 and exactly one stderr line ``error: ...``; returns it."""
        p = self(*args, stdin=stdin, ok=False, env=env)
        assert p.returncode == 1, f"{args}: exit {p.returncode}\n{p.stdout}\n{p.stderr}"
        lines = p.stderr.strip("\n").split("\n")
        assert len(lines) == 1 and lines[0].startswith("error: "), f"{args}: {p.stderr!r}"
        return lines[0]


@pytest.fixture
def cli(settings, tmp_path) -> Cli:
    from fileregistry.sources.crypto import load_cipher

    load_cipher(settings)  # makes <data_dir>/secret.key now, shared by the CLI and the app fixture
    return Cli(settings, tmp_path)


@pytest.fixture
def zone(sshd, settings) -> Zone:
    return Zone(sshd, settings.resolved_mirror_dir)
