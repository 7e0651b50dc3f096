"""Reuse of authenticated SFTP sessions between requests (one SSH handshake per burst, not per call).

A session is reused only by a request with the very same host, port, user, credentials and
host-key setting (compared by a SHA-256 of them, kept in memory only), so a wrong password is never
answered by someone else's connection. Idle sessions are closed after ``idle_seconds``; a session
whose request failed is closed, never returned. The app installs one pool per event loop in its
lifespan; without a pool (e.g. a script calling ``monitor`` directly) every call connects anew.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
import weakref
from collections.abc import AsyncIterator

from fileregistry.sftp.remote import RemoteSession
from fileregistry.sftp.schemas import SFTPConfig


def pool_key(config: SFTPConfig, expected_host_key: str) -> bytes:
    h = hashlib.sha256()
    for part in (
        expected_host_key,
        config.host,
        str(config.port),
        config.username,
        config.password.get_secret_value() if config.password else "",
        config.private_key.get_secret_value() if config.private_key else "",
        config.key_path or "",
        config.host_key or "",
    ):
        h.update(part.encode("utf-8", "surrogatepass") + b"\x00")
    return h.digest()


class SessionPool:
    def __init__(self, *, idle_seconds: float = 30.0, max_idle_per_key: int = 8) -> None:
        self.idle_seconds = idle_seconds
        self.max_idle_per_key = max_idle_per_key
        self._idle: dict[bytes, list[tuple[float, RemoteSession]]] = {}
        self.reused = 0  # for tests and metrics

    def take(self, key: bytes) -> RemoteSession | None:
        self._prune()
        idle = self._idle.get(key)
        while idle:
            _, session = idle.pop()
            if session.reusable():
                self.reused += 1
                return session
            self._close_later(session)
        return None

    def give_back(self, key: bytes, session: RemoteSession) -> None:
        idle = self._idle.setdefault(key, [])
        if session.reusable() and len(idle) < self.max_idle_per_key:
            idle.append((time.monotonic(), session))
        else:
            self._close_later(session)

    def _prune(self) -> None:
        cutoff = time.monotonic() - self.idle_seconds
        for key, idle in list(self._idle.items()):
            keep = [(t, s) for t, s in idle if t >= cutoff]
            for t, s in idle:
                if t < cutoff:
                    self._close_later(s)
            if keep:
                self._idle[key] = keep
            else:
                del self._idle[key]

    def _close_later(self, session: RemoteSession) -> None:
        task = asyncio.ensure_future(session.aclose())
        task.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def aclose(self) -> None:
        sessions = [s for idle in self._idle.values() for _, s in idle]
        self._idle.clear()
        await asyncio.gather(*(s.aclose() for s in sessions), return_exceptions=True)


_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, SessionPool] = weakref.WeakKeyDictionary()


def current_pool() -> SessionPool | None:
    return _pools.get(asyncio.get_running_loop())


@contextlib.asynccontextmanager
async def session_pool(**kwargs) -> AsyncIterator[SessionPool]:
    """Install a pool for the running event loop (the app's lifespan does this)."""
    loop = asyncio.get_running_loop()
    pool = SessionPool(**kwargs)
    _pools[loop] = pool
    try:
        yield pool
    finally:
        if _pools.get(loop) is pool:
            del _pools[loop]
        await pool.aclose()


@contextlib.asynccontextmanager
async def app_session_pool(app) -> AsyncIterator[SessionPool]:
    """The app's lifespan starter (see ``fileregistry.app._component_starters``)."""
    async with session_pool() as pool:
        app.state.sftp_pool = pool
        yield pool
