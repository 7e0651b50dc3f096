"""Fixtures of the SFTP monitor tests: a fresh landing zone per test on the real sshd."""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import Zone


@pytest.fixture
def zone(sshd, settings) -> Zone:
    return Zone(sshd, settings.resolved_mirror_dir)


@pytest.fixture
def fake_sftp(tmp_path):
    """An in-process asyncssh SFTP server chrooted to a fresh dir (for faults OpenSSH cannot make)."""
    from .fakeserver import FakeSFTPServer

    root = tmp_path / "fake-root"
    (root / "zone" / "new").mkdir(parents=True)
    server = FakeSFTPServer(root).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def key_dir(settings) -> Path:
    """The app's key directory (FILEREGISTRY_SFTP_KEY_DIR, default <data_dir>/keys), created."""
    d = settings.resolved_sftp_key_dir
    d.mkdir(parents=True, exist_ok=True)
    return d
