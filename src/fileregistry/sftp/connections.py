"""Opening an SFTP session with the host-key policy, and per-connection locks.

Host keys: the config's ``host_key`` if given; otherwise the key stored for ``host:port`` on first use
(OpenSSH ``accept-new``); a later different key is refused. Nothing is ever accepted blindly: even a
first-use key is seen (and stored) before the session is used.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from fileregistry.config import Settings
from fileregistry.db import unit_of_work
from fileregistry.errors import AppError, UpstreamError
from fileregistry.sftp import registry, remote
from fileregistry.sftp.pool import current_pool, pool_key
from fileregistry.sftp.schemas import SFTPConfig

Sessions = async_sessionmaker[AsyncSession]


@contextlib.asynccontextmanager
async def connect(config: SFTPConfig, *, settings: Settings, sessions: Sessions) -> AsyncIterator[remote.RemoteSession]:
    """An authenticated session: a pooled one when the app has a pool, else a fresh one.

    A pooled session goes back to the pool only when the block succeeded (or failed with a plain
    4xx, which says nothing about the connection); any other error closes it.
    """
    expected = await _expected_host_key(config, sessions)
    pool = current_pool()
    # The expected host key is part of the pool key: once the stored key changes, nothing is reused.
    key = pool_key(config, expected.describe() if expected else "") if pool is not None else b""
    rs = pool.take(key) if pool is not None else None
    if rs is None:
        rs = await _open(config, expected, settings=settings, sessions=sessions)
        if pool is not None and expected is None and rs.seen_host_key is not None:
            # First use: the key just stored is what later requests will expect.
            key = pool_key(config, remote.fingerprint(rs.seen_host_key))
    healthy = False
    try:
        yield rs
        healthy = True
    except AppError as exc:
        healthy = exc.status_code < 500
        raise
    finally:
        if pool is not None and healthy:
            pool.give_back(key, rs)
        else:
            await rs.aclose()


async def _expected_host_key(config: SFTPConfig, sessions: Sessions) -> remote.HostKeySpec | None:
    if config.host_key:
        return remote.parse_host_key(config.host_key)
    async with unit_of_work(sessions) as s:
        stored = await registry.known_host_key(s, config.host, config.port)
    return remote.parse_host_key(stored, source="known_hosts") if stored else None


async def _open(
    config: SFTPConfig, expected: remote.HostKeySpec | None, *, settings: Settings, sessions: Sessions
) -> remote.RemoteSession:
    rs = await remote.connect_session(config, settings=settings, expected=expected)
    try:
        if expected is None:
            seen = rs.seen_host_key
            if seen is None:  # pragma: no cover - asyncssh always shows us the key
                raise UpstreamError(f"SFTP server {rs.endpoint}: no host key to verify")
            line = remote.key_line(seen)
            async with unit_of_work(sessions) as s:
                stored = await registry.remember_host_key(s, config.host, config.port, line, remote.fingerprint(seen))
            if stored != line:  # another request stored a different key first
                raise UpstreamError(
                    f"SFTP server {rs.endpoint}: host key changed: the server presented {remote.fingerprint(seen)} "
                    "but a different key was stored on first use"
                )
    except BaseException:
        await rs.aclose()
        raise
    return rs


class KeyedLocks:
    """One asyncio.Lock per connection key and event loop (so scans and moves of one connection
    do not interleave inside this process)."""

    def __init__(self) -> None:
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = (
            weakref.WeakKeyDictionary()
        )

    def __call__(self, key: str) -> asyncio.Lock:
        locks = self._by_loop.setdefault(asyncio.get_running_loop(), {})
        lock = locks.get(key)
        if lock is None:
            lock = locks[key] = asyncio.Lock()
        return lock


connection_lock = KeyedLocks()
