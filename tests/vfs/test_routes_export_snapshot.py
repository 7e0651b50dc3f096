"""An export reads one snapshot: a replace committing between its pages is all in it or not at all."""

from __future__ import annotations

import asyncio
import threading

import orjson

from fileregistry.db import create_nullpool_engine
from fileregistry.vfs import service, store
from tests.vfs.conftest import item, jsonl

OLD = [item("/", f"a{i:02d}") for i in range(20)]
NEW = [item("/", f"b{i:02d}") for i in range(20)] + [item("/", "a00x")]


def test_export_while_a_replace_commits_between_pages(vfs, settings, tmp_path, monkeypatch):
    fs = vfs.create()
    assert vfs.run(fs, jsonl(*OLD))["status"] == "successful"
    spool = tmp_path / "new.jsonl"
    spool.write_bytes(jsonl(*NEW))
    url = settings.resolved_database_url

    def replace_now() -> None:  # a whole replace, committed by another connection
        async def go():
            engine = create_nullpool_engine(url)
            try:
                res = await service.run_upload(engine, fs, spool, {"on_error": "fail"})
                assert res.status == "successful", res
            finally:
                await engine.dispose()
        t = threading.Thread(target=lambda: asyncio.run(go()))
        t.start()
        t.join()

    real = store.to_export_line
    lines = 0

    def hooked(d, row):
        nonlocal lines
        lines += 1
        if lines == 3:  # the first page (batch of 2) is out: the replace commits before the next
            replace_now()
        return real(d, row)

    monkeypatch.setattr(store, "EXPORT_BATCH", 2)
    monkeypatch.setattr(store, "to_export_line", hooked)
    names = [orjson.loads(x)["name"] for x in vfs.export(fs).splitlines()]
    assert lines > 3  # the replace happened mid-export
    assert names == [o["name"] for o in OLD], names  # all old: the export's snapshot
    monkeypatch.setattr(store, "to_export_line", real)
    names = [orjson.loads(x)["name"] for x in vfs.export(fs).splitlines()]
    assert names == sorted(o["name"] for o in NEW)  # the next export sees the new tree, whole
