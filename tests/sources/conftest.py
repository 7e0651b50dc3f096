"""Fixtures of the stored-source tests: a landing zone on the real sshd, stored as a source."""

from __future__ import annotations

import pytest

from tests.sftp.helpers import Zone


@pytest.fixture
def zone(sshd, settings) -> Zone:
    return Zone(sshd, settings.resolved_mirror_dir)


@pytest.fixture
def source(client, zone) -> str:
    r = client.put("/generic/sftp-config/partner-a", json={"config": zone.cfg})
    assert r.status_code == 200, r.text
    return "partner-a"
