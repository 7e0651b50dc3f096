"""Many concurrent transitions of one connection with a small database pool must not starve.

Moves of one connection are serialised by a lock; a request waiting for that lock must not hold a
pooled database connection (the auth lookup used to), or the lock holder cannot get one.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from .helpers import call


@pytest.fixture
def settings(settings):
    # pool_size 1 + max_overflow 1: two database connections for the whole app.
    return settings.model_copy(update={"db_pool_size": 1})


def test_concurrent_mark_processing_with_a_tiny_pool(client, zone):
    names = [f"f{i:02d}.csv" for i in range(12)]
    for n in names:
        zone.put(n, n.encode())
    r = call(client, "POST", "/sftp/scan", zone.cfg)
    assert r.status_code == 200, r.text
    assert len(r.json()["new_files"]) == len(names)

    with ThreadPoolExecutor(8) as ex:
        results = list(ex.map(lambda n: call(client, "POST", f"/sftp/mark-processing/{n}", zone.cfg), names))

    assert [r.status_code for r in results] == [200] * len(names), [r.text for r in results if r.status_code != 200]
    new_names = {r.json()["new_filename"] for r in results}
    assert len(new_names) == len(names)  # never overwritten, each file got its own name
    assert sorted(p.name for p in (zone.path / "processing").iterdir()) == sorted(new_names)
    r = call(client, "GET", "/sftp/new-files", zone.cfg)
    assert r.json() == {"new_files": []}
