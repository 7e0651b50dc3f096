"""sftp/browse.py: keyset paging, filters, search and histories, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from fileregistry.db import create_nullpool_engine, session_factory, unit_of_work
from fileregistry.errors import BadRequest, NotFound
from fileregistry.sftp import browse, registry

KEY = "sftp_connection_example_/zone"
OTHER = "sftp_connection_example_/other"
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _files(n: int) -> list[tuple[str, int, datetime | None]]:
    # Many ties on purpose: 7 sizes, 5 mtimes (one of them unknown), names with LIKE metacharacters.
    out = []
    for i in range(n):
        mtime = None if i % 5 == 0 else T0 + timedelta(minutes=i % 5)
        name = f"f{i:04d}.csv" if i % 50 else f"odd_{i}%_x.csv"
        out.append((name, (i % 7) * 100, mtime))
    return out


def run(db_url, fn):
    async def go():
        engine = create_nullpool_engine(db_url)
        try:
            async with unit_of_work(session_factory(engine)) as s:
                return await fn(s)
        finally:
            await engine.dispose()

    return asyncio.run(go())


@pytest.fixture
def seeded(db_url):
    async def seed(s):
        await registry.register_new(s, KEY, _files(257))
        await registry.register_new(s, OTHER, [("f0001.csv", 1, None)])
        # a few files moved on, to filter by state
        for name in ("f0001.csv", "f0002.csv", "f0003.csv"):
            row = await registry.find(s, KEY, "new", name)
            await registry.move(s, row, "processing", name.replace(".csv", "_p.csv"))

    run(db_url, seed)
    return db_url


def _walk(db_url, **kw):
    """Every page forwards, then every page backwards from the end; returns both id orders."""
    async def go(s):
        pages, cursor = [], None
        while True:
            page = await browse.list_files(s, KEY, after=cursor, limit=40, **kw)
            pages.append(page)
            if not page.next_cursor:
                break
            cursor = page.next_cursor
        back, cursor = [pages[-1]], pages[-1].prev_cursor
        while cursor:
            page = await browse.list_files(s, KEY, before=cursor, limit=40, **kw)
            back.append(page)
            cursor = page.prev_cursor
        return pages, back

    return run(db_url, go)


def _expected(sort: str, descending: bool, rows):
    def key(r):
        v = {"mtime": r.remote_mtime or datetime(1970, 1, 1, tzinfo=UTC), "size": r.size, "name": r.name}[sort]
        return (v, r.id)
    return [r.id for r in sorted(rows, key=key, reverse=descending)]


@pytest.mark.parametrize("sort", ["mtime", "size", "name"])
@pytest.mark.parametrize("descending", [True, False])
@pytest.mark.parametrize("state", [None, "new"])
def test_keyset_pages_cover_everything_in_order(seeded, sort, descending, state):
    pages, back = _walk(seeded, sort=sort, descending=descending, state=state)
    forward = [r.id for p in pages for r in p.items]
    everything = run(seeded, lambda s: browse.list_files(s, KEY, limit=500, sort="name", state=state))
    assert len(forward) == len(set(forward)) == (257 if state is None else 254)
    assert forward == _expected(sort, descending, everything.items)
    # Walking back with prev_cursor gives the same pages again.
    assert [[r.id for r in p.items] for p in reversed(back)] == [[r.id for r in p.items] for p in pages]
    assert pages[0].prev_cursor is None and back[-1].prev_cursor is None


def test_filter_search_and_counts(seeded):
    async def go(s):
        counts = await browse.state_counts(s, KEY)
        processing = await browse.list_files(s, KEY, state="processing", sort="name", descending=False)
        percent = await browse.list_files(s, KEY, search="%")
        underscore = await browse.list_files(s, KEY, search="_p")
        by_original = await browse.list_files(s, KEY, search="F0002", state="processing")
        none = await browse.list_files(s, KEY, search="zzz")
        return counts, processing, percent, underscore, by_original, none

    counts, processing, percent, underscore, by_original, none = run(seeded, go)
    assert counts == {"new": 254, "processing": 3, "completed": 0, "error": 0}
    assert [r.name for r in processing.items] == ["f0001_p.csv", "f0002_p.csv", "f0003_p.csv"]
    # '%' and '_' are literal characters in a search, not wildcards.
    assert sorted(r.name for r in percent.items) == sorted(f"odd_{i}%_x.csv" for i in range(0, 257, 50))
    assert sorted(r.name for r in underscore.items) == ["f0001_p.csv", "f0002_p.csv", "f0003_p.csv"]
    assert [r.name for r in by_original.items] == ["f0002_p.csv"]  # case-insensitive, original name too
    assert none.items == [] and none.next_cursor is None and none.prev_cursor is None


def test_bad_input_is_a_400(seeded):
    for kw in ({"after": "garbage!!"}, {"sort": "owner"}, {"state": "gone"}, {"after": "x", "before": "y"}):
        with pytest.raises(BadRequest):
            run(seeded, lambda s, kw=kw: browse.list_files(s, KEY, **kw))
    # A cursor of one sort given to another is refused, not misread.
    page = run(seeded, lambda s: browse.list_files(s, KEY, sort="size", limit=10))
    with pytest.raises(BadRequest):
        run(seeded, lambda s: browse.list_files(s, KEY, sort="name", after=page.next_cursor))


def test_file_history_and_scans(seeded):
    async def go(s):
        row = await registry.find(s, KEY, "processing", "f0002_p.csv")
        f = await browse.get_file(s, KEY, row.id)
        hist = await browse.file_history(s, row.id)
        with pytest.raises(NotFound):
            await browse.get_file(s, OTHER, row.id)  # another connection's registry
        for i in range(7):
            await registry.add_scan(s, connection_key=KEY, started_at=T0 + timedelta(seconds=i // 2), duration=0.1,
                                    listed=i, error=None if i % 3 else "boom")
        first = await browse.list_scans(s, KEY, limit=3)
        second = await browse.list_scans(s, KEY, after=first.next_cursor, limit=3)
        third = await browse.list_scans(s, KEY, after=second.next_cursor, limit=3)
        return f, hist, first, second, third

    f, hist, first, second, third = run(seeded, go)
    assert f.state == "processing" and f.original_name == "f0002.csv"
    assert [(e.from_state, e.to_state) for e in hist] == [(None, "new"), ("new", "processing")]
    listed = [sc.listed for p in (first, second, third) for sc in p.items]
    assert listed == [6, 5, 4, 3, 2, 1, 0]  # newest first, ties on started_at broken by id
    assert third.next_cursor is None
