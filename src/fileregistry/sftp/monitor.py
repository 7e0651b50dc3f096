"""Use cases of the SFTP monitor, usable without HTTP (routes, CLI and benchmarks call these).

Every function takes the validated :class:`SFTPConfig`, the :class:`Settings` and a session factory,
and owns its units of work (a scan records its history even when it fails).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from datetime import UTC, datetime
from pathlib import Path

from fileregistry.config import Settings
from fileregistry.db import unit_of_work, utcnow
from fileregistry.errors import AppError, NotFound, UpstreamTimeout
from fileregistry.sftp import registry
from fileregistry.sftp.connections import Sessions, connect, connection_lock
from fileregistry.sftp.mirror import Mirror
from fileregistry.sftp.models import TrackedFile
from fileregistry.sftp.names import NEW, connection_key, filename_problem, remote_dir
from fileregistry.sftp.remote import RemoteEntry, RemoteSession
from fileregistry.sftp.schemas import (
    ConnectionKeyResponse,
    FailedFile,
    FileInfo,
    MessageResponse,
    NewFilesResponse,
    ScanResult,
    SFTPConfig,
    StatusResponse,
)
from fileregistry.sftp.transitions import mark_completed, mark_error, mark_processing

__all__ = [
    "clear_registry",
    "get_connection_key",
    "mark_completed",
    "mark_error",
    "mark_processing",
    "new_files",
    "scan",
    "status",
]


def get_connection_key(config: SFTPConfig) -> ConnectionKeyResponse:
    return ConnectionKeyResponse(connection_key=connection_key(config.host, config.remote_path))


def _mtime(seconds: int | None) -> datetime | None:
    return datetime.fromtimestamp(seconds, UTC) if seconds is not None else None


def _info(row: TrackedFile) -> FileInfo:
    return FileInfo(path=row.name, size=row.size, modified=row.remote_mtime, status=row.state)


# --------------------------------------------------------------------------- scan


async def scan(config: SFTPConfig, *, settings: Settings, sessions: Sessions) -> ScanResult:
    """List ``<remote_path>/new``, download what is untracked or changed, register it, record the scan."""
    key = connection_key(config.host, config.remote_path)
    started, t0 = utcnow(), time.perf_counter()
    stats = {"listed": 0, "new_count": 0, "updated_count": 0, "failed_count": 0, "bytes_downloaded": 0}
    try:
        try:
            async with asyncio.timeout(settings.sftp_scan_timeout):
                async with connect(config, settings=settings, sessions=sessions) as rs:
                    async with connection_lock(key):
                        return await _scan(rs, config, key, settings, sessions, started, t0, stats)
        except TimeoutError:
            raise UpstreamTimeout(
                f"SFTP server {config.host}:{config.port}: scan timed out after {settings.sftp_scan_timeout:g}s"
            ) from None
    except AppError as exc:
        with contextlib.suppress(Exception):  # the history must not hide the real error
            async with unit_of_work(sessions) as s:
                await registry.add_scan(s, connection_key=key, started_at=started,
                                        duration=time.perf_counter() - t0, error=exc.message, **stats)
        raise


async def _list_new(rs: RemoteSession, config: SFTPConfig) -> list[RemoteEntry]:
    new_dir = remote_dir(config.remote_path, NEW)
    try:
        return await rs.list_files(new_dir)
    except NotFound:
        if await rs.kind(config.remote_path) != "dir":
            raise NotFound(f"remote_path {config.remote_path!r} not found on SFTP server {rs.endpoint}") from None
        raise NotFound(f"directory {new_dir!r} not found on SFTP server {rs.endpoint}") from None


async def _scan(rs, config, key, settings, sessions, started, t0, stats) -> ScanResult:
    entries = await _list_new(rs, config)
    stats["listed"] = len(entries)
    async with unit_of_work(sessions) as s:
        seen = await registry.new_state_index(s, key)

    failed: list[FailedFile] = []
    todo: list[tuple[RemoteEntry, int | None]] = []
    for e in entries:
        known = seen.get(e.name)
        if known is not None and known.size == e.size and known.mtime == e.mtime:
            continue
        problem = filename_problem(e.name)
        if problem:
            failed.append(FailedFile(path=e.name, error=f"not supported: {problem}"))
            continue
        todo.append((e, known.id if known else None))

    mirror = Mirror(settings.resolved_mirror_dir, key)
    done = await _download_all(rs, config, mirror, todo, failed, settings.sftp_download_concurrency)
    done.sort(key=lambda item: item[0].name)
    failed.sort(key=lambda f: f.path)

    inserted = [(e.name, e.size, _mtime(e.mtime)) for e, fid in done if fid is None]
    updated = [(fid, e.size, _mtime(e.mtime)) for e, fid in done if fid is not None]
    stats.update(new_count=len(inserted), updated_count=len(updated), failed_count=len(failed),
                 bytes_downloaded=sum(e.size for e, _ in done))
    duration = time.perf_counter() - t0
    async with unit_of_work(sessions) as s:
        await registry.register_new(s, key, inserted)
        await registry.update_changed(s, updated)
        await registry.add_scan(s, connection_key=key, started_at=started, duration=duration, error=None, **stats)
    return ScanResult(
        new_files=[FileInfo(path=e.name, size=e.size, modified=_mtime(e.mtime), status=NEW) for e, _ in done],
        total_files=len(entries),
        scan_timestamp=started,
        scan_duration=round(duration, 6),
        updated_files=[e.name for e, fid in done if fid is not None],
        failed_files=failed,
    )


async def _download_all(
    rs: RemoteSession,
    config: SFTPConfig,
    mirror: Mirror,
    todo: list[tuple[RemoteEntry, int | None]],
    failed: list[FailedFile],
    concurrency: int,
) -> list[tuple[RemoteEntry, int | None]]:
    """Download with ``concurrency`` workers; each file goes to a temp name and is renamed into
    ``new/`` only when its byte count matches the listing."""
    if not todo:
        return []
    # Plain strings, not pathlib: this loop runs once per file and pathlib costs microseconds per join.
    new_dir = str(mirror.ensure_state_dir(NEW))
    tmp_dir = str(mirror.temp_dir())
    remote_new = remote_dir(config.remote_path, NEW)
    done: list[tuple[RemoteEntry, int | None]] = []
    jobs = iter(enumerate(todo))

    async def worker() -> None:
        for i, item in jobs:  # one shared iterator: each item goes to exactly one worker
            e = item[0]
            tmp = f"{tmp_dir}/{i}.part"
            try:
                got = await rs.download(f"{remote_new}/{e.name}", tmp, e.size)
                if got != e.size:
                    raise _SizeChanged(e.size, got)
                # e.name is a validated bare name, so the join cannot leave new_dir.
                os.replace(tmp, f"{new_dir}/{e.name}")
                done.append(item)
            except (AppError, OSError, _SizeChanged) as exc:
                _unlink(tmp)
                failed.append(FailedFile(path=e.name, error=_why(exc)))
            except BaseException:
                _unlink(tmp)
                raise

    workers = [asyncio.ensure_future(worker()) for _ in range(min(concurrency, len(todo)))]
    try:
        await asyncio.gather(*workers)
    finally:
        for w in workers:
            w.cancel()
    return done


class _SizeChanged(Exception):
    def __init__(self, expected: int, got: int) -> None:
        more = "more than " if got > expected else ""
        super().__init__(f"size changed during download: listed {expected} bytes, read {more}{min(got, expected)}")


def _why(exc: BaseException) -> str:
    if isinstance(exc, AppError):
        return exc.message
    if isinstance(exc, OSError):
        return f"mirror write failed: {exc.strerror or type(exc).__name__}"
    return str(exc)


def _unlink(path: str | Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


# --------------------------------------------------------------------------- registry views


async def status(config: SFTPConfig, *, sessions: Sessions) -> StatusResponse:
    key = connection_key(config.host, config.remote_path)
    async with unit_of_work(sessions) as s:
        rows = await registry.files(s, key)
        last = await registry.last_scan_time(s, key)
    return StatusResponse(
        total_tracked_files=len(rows),
        last_scan_time=last,
        file_registry={f"{r.state}/{r.name}": _info(r) for r in rows},
    )


async def new_files(config: SFTPConfig, *, sessions: Sessions) -> NewFilesResponse:
    key = connection_key(config.host, config.remote_path)
    async with unit_of_work(sessions) as s:
        rows = await registry.files(s, key, NEW)
    return NewFilesResponse(new_files=[_info(r) for r in rows])


async def clear_registry(config: SFTPConfig, *, settings: Settings, sessions: Sessions) -> MessageResponse:
    """Forget this connection: its files, events and scans, and its mirror directory.

    The SFTP server is not touched and stored host keys are kept (they belong to host:port).
    """
    key = connection_key(config.host, config.remote_path)
    async with connection_lock(key):
        async with unit_of_work(sessions) as s:
            await registry.clear(s, key)
        await asyncio.to_thread(Mirror(settings.resolved_mirror_dir, key).clear)
    return MessageResponse(message="Registry cleared")
