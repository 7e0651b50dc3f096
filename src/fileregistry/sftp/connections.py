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
from fileregistry.errors import UpstreamError
from fileregistry.sftp import registry, remote
from fileregistry.sftp.schemas import SFTPConfig

Sessions = async_sessionmaker[AsyncSession]


@contextlib.asynccontextmanager
async def connect(config: SFTPConfig, *, settings: Settings, sessions: Sessions) -> AsyncIterator[remote.RemoteSession]:
    expected = remote.parse_host_key(config.host_key) if config.host_key else None
    remote.load_client_keys(config)  # a bad key is a 422 before any network I/O
    if expected is None:
        async with unit_of_work(sessions) as s:
            stored = await registry.known_host_key(s, config.host, config.port)
        if stored:
            expected = remote.parse_host_key(stored, source="known_hosts")
    async with remote.open_session(config, settings=settings, expected=expected) as rs:
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
        yield rs


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
