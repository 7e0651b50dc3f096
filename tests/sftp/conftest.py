"""Fixtures of the SFTP monitor tests: a fresh landing zone per test on the real sshd."""

from __future__ import annotations

import pytest

from .helpers import Zone


@pytest.fixture
def zone(sshd, settings) -> Zone:
    return Zone(sshd, settings.resolved_mirror_dir)
