"""Use cases of the SFTP monitor, usable without HTTP (routes, CLI and benchmarks call these).

Every function takes the validated :class:`SFTPConfig`, the :class:`Settings` and a session factory,
and owns its units of work (a scan records its history even when it fails).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from fileregistry.config import Settings
from fileregistry.db import unit_of_work, utcnow
from fileregistry.errors import AppError, BadRequest, NotFound, UpstreamTimeout
from fileregistry.sftp import registry
from fileregistry.observability import metrics
from fileregistry.sftp.connections import Sessions, connect
from fileregistry.sftp.download_worker import SPLIT_MIN_FILES, Helper, fetch_one
from fileregistry.sftp.lease import scan_guard
from fileregistry.sftp.mirror import Mirror
from fileregistry.sftp.models import TrackedFile
from fileregistry.sftp.names import NEW, STATES, connection_key, filename_problem, remote_dir, validate_filename
from fileregistry.sftp.remote import RemoteEntry, RemoteSession, key_line
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
from fileregistry.sources import store as sources_store

log = logging.getLogger(__name__)

__all__ = [
    "clear_registry",
    "mirrored_file",
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


Progress = Callable[[int, int, int], None]  # (files done, files to download, bytes done)


async def scan(config: SFTPConfig, *, settings: Settings, sessions: Sessions, trigger: str = "api",
               wait: bool = True, progress: Progress | None = None) -> ScanResult:
    """List ``<remote_path>/new``, download what is untracked or changed, register it, record the scan.

    ``progress`` (the CLI's bar) is called once the download list is known and after every file.

    Scans of one connection never overlap, in any process: a second one waits for the first (up to
    ``scan_wait_timeout``), or with ``wait=False`` gets :class:`Conflict` at once.
    """
    key = connection_key(config.host, config.remote_path)
    async with scan_guard(key, settings=settings, sessions=sessions, wait=wait):
        started, t0 = utcnow(), time.perf_counter()
        stats = {"listed": 0, "new_count": 0, "updated_count": 0, "failed_count": 0, "removed_count": 0,
                 "bytes_downloaded": 0}
        try:
            try:
                async with asyncio.timeout(settings.sftp_scan_timeout):
                    async with connect(config, settings=settings, sessions=sessions) as rs:
                        result = await _scan(rs, config, key, settings, sessions, started, t0, stats, trigger,
                                             progress)
            except TimeoutError:
                raise UpstreamTimeout(
                    f"SFTP server {config.host}:{config.port}: scan timed out after {settings.sftp_scan_timeout:g}s"
                ) from None
        except Exception as exc:
            # AppErrors carry a message made for users; anything else is named by its type only (its
            # text may hold paths or driver details), and is logged with its traceback.
            message = exc.message if isinstance(exc, AppError) else f"internal error: {type(exc).__name__}"
            if not isinstance(exc, AppError):
                log.exception("scan of %s failed", key)
            with contextlib.suppress(Exception):  # the history must not hide the real error
                async with unit_of_work(sessions) as s:
                    await registry.add_scan(s, connection_key=key, started_at=started, trigger=trigger,
                                            duration=time.perf_counter() - t0, error=message, **stats)
            await _observe(sessions, key, time.perf_counter() - t0, stats, ok=False)
            raise
    await _observe(sessions, key, result.scan_duration, stats, ok=True)
    return result


async def _observe(sessions: Sessions, key: str, duration: float, stats: dict, *, ok: bool) -> None:
    """Scan metrics, labelled with the stored source's name where there is one."""
    try:
        async with unit_of_work(sessions) as s:
            label = await sources_store.name_for_key(s, key) or key
    except Exception:  # noqa: BLE001 - metrics must never fail a scan
        label = key
    metrics.record_scan(label, duration, stats["bytes_downloaded"], ok)


async def _list_new(rs: RemoteSession, config: SFTPConfig) -> list[RemoteEntry]:
    new_dir = remote_dir(config.remote_path, NEW)
    try:
        return await rs.list_files(new_dir)
    except NotFound:
        if await rs.kind(config.remote_path) != "dir":
            raise NotFound(f"remote_path {config.remote_path!r} not found on SFTP server {rs.endpoint}") from None
        raise NotFound(f"directory {new_dir!r} not found on SFTP server {rs.endpoint}") from None


async def _scan(rs, config, key, settings, sessions, started, t0, stats, trigger, progress) -> ScanResult:
    entries = await _list_new(rs, config)
    stats["listed"] = len(entries)
    async with unit_of_work(sessions) as s:
        seen = await registry.new_state_index(s, key)
    # Tracked 'new' files the partner took back (deleted or renamed away before anyone claimed them):
    # they can never be marked, so they leave the registry and the mirror instead of sitting in
    # new-files forever. A listing that failed raised above, so absence here is real.
    listed = {e.name for e in entries}
    removed = sorted(name for name in seen if name not in listed)

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
    done: list[tuple[RemoteEntry, int | None]] = []
    try:
        await _download_all(rs, config, settings, mirror, todo, failed, done, progress)
        done.sort(key=lambda item: item[0].name)
        failed.sort(key=lambda f: f.path)
        inserted = [(e.name, e.size, _mtime(e.mtime)) for e, fid in done if fid is None]
        updated = [(fid, e.size, _mtime(e.mtime)) for e, fid in done if fid is not None]
        stats.update(new_count=len(inserted), updated_count=len(updated), failed_count=len(failed),
                     removed_count=len(removed), bytes_downloaded=sum(e.size for e, _ in done))
        duration = time.perf_counter() - t0
        async with unit_of_work(sessions) as s:
            await registry.register_new(s, key, inserted)
            await registry.update_changed(s, updated)
            await registry.unregister_new(s, [seen[name].id for name in removed])
            await registry.add_scan(s, connection_key=key, started_at=started, duration=duration, error=None,
                                    trigger=trigger, **stats)
    except BaseException:
        # Cut off (timeout, cancellation, a database error) before the registry recorded them: any
        # copy in new/ of a file that was not tracked would be a mirror copy nobody tracks (that
        # includes files a killed helper process had downloaded but not yet reported).
        untracked = [e.name for e, fid in todo if fid is None]
        if untracked:
            with contextlib.suppress(OSError):
                await asyncio.to_thread(lambda: [mirror.remove(NEW, name) for name in untracked])
        raise
    if removed:
        log.info("scan of %s: %d tracked new file(s) gone from the server, unregistered: %s", key, len(removed),
                 ", ".join(removed[:20]) + (" ..." if len(removed) > 20 else ""))
        try:
            await asyncio.to_thread(lambda: [mirror.remove(NEW, name) for name in removed])
        except OSError as exc:  # the registry is right; a stale mirror copy is only disk space
            log.warning("scan of %s: could not delete mirror copies of removed files: %s", key, exc.strerror)
    return ScanResult(
        new_files=[FileInfo(path=e.name, size=e.size, modified=_mtime(e.mtime), status=NEW) for e, _ in done],
        total_files=len(entries),
        scan_timestamp=started,
        scan_duration=round(duration, 6),
        updated_files=[e.name for e, fid in done if fid is not None],
        failed_files=failed,
        removed_files=removed,
    )


async def _download_all(
    rs: RemoteSession,
    config: SFTPConfig,
    settings: Settings,
    mirror: Mirror,
    todo: list[tuple[RemoteEntry, int | None]],
    failed: list[FailedFile],
    done: list[tuple[RemoteEntry, int | None]],
    progress: Progress | None = None,
) -> None:
    """Download with ``sftp_download_concurrency`` workers; each file goes to a temp name and is renamed
    into ``new/`` only when its byte count matches the listing. Finished files are appended to ``done``
    as they land (the caller cleans up after them if the scan is cut off).

    A large todo list is shared with ``sftp_download_processes - 1`` helper processes, each with its own
    connection verified against the host key this one presented (see :mod:`download_worker`).
    """
    if not todo:
        return
    new_dir = str(mirror.ensure_state_dir(NEW))
    # A directory of this scan's own: temp names ("<i>.part") can never meet another scan's.
    tmp_dir = await asyncio.to_thread(tempfile.mkdtemp, prefix="scan-", dir=mirror.temp_dir())
    remote_new = remote_dir(config.remote_path, NEW)
    # One shared iterator: each file goes to exactly one worker, here or in a helper process.
    jobs = ((i, item[0].name, item[0].size) for i, item in enumerate(todo))

    total = len(todo)
    finished = [0, 0]  # files, bytes

    def record(i: int, err: str | None) -> None:
        if err is None:
            done.append(todo[i])
            finished[1] += todo[i][0].size
        else:
            failed.append(FailedFile(path=todo[i][0].name, error=err))
        finished[0] += 1
        if progress is not None:
            progress(finished[0], total, finished[1])

    if progress is not None:
        progress(0, total, 0)

    async def worker() -> None:
        for i, name, size in jobs:
            record(i, await fetch_one(rs, remote_new, tmp_dir, new_dir, i, name, size))

    concurrency = settings.sftp_download_concurrency
    tasks = [asyncio.ensure_future(worker()) for _ in range(min(concurrency, len(todo)))]
    extra = settings.sftp_download_processes - 1
    if extra > 0 and len(todo) >= SPLIT_MIN_FILES and rs.seen_host_key is not None:
        payload = {
            "config": config, "settings": settings, "host_key": key_line(rs.seen_host_key),
            "remote_new": remote_new, "tmp_dir": tmp_dir, "new_dir": new_dir, "concurrency": concurrency,
        }
        tasks += [asyncio.ensure_future(Helper(jobs, record, tmp_dir).run(payload)) for _ in range(extra)]
    try:
        await asyncio.gather(*tasks)
    finally:
        for t in tasks:
            t.cancel()
        if any(not t.done() for t in tasks):
            await asyncio.wait(tasks)  # helpers kill their process and clean up on cancellation
        await asyncio.to_thread(shutil.rmtree, tmp_dir, True)


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


async def mirrored_file(config: SFTPConfig, filename: str, state: str, *, settings: Settings,
                        sessions: Sessions) -> tuple[Path, int]:
    """The local mirror copy of a tracked file (for workers that do not share the server's disk)."""
    validate_filename(filename)
    if state not in STATES:
        raise BadRequest(f"state must be one of {', '.join(STATES)}")
    key = connection_key(config.host, config.remote_path)
    async with unit_of_work(sessions) as s:
        row = await registry.find(s, key, state, filename)
    if row is None:
        raise NotFound(f"File {filename} not found in {state} state.")
    path = Mirror(settings.resolved_mirror_dir, key).path(state, filename)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise NotFound(f"File {filename} is registered in {state} but missing from the local mirror") from None
    return path, size


async def clear_registry(config: SFTPConfig, *, settings: Settings, sessions: Sessions) -> MessageResponse:
    """Forget this connection: its files, events and scans, and its mirror directory.

    The SFTP server is not touched and stored host keys are kept (they belong to host:port).
    """
    key = connection_key(config.host, config.remote_path)
    # The scan lease, not only this process's lock: a scan in another process must not re-register
    # files or write into the mirror while it is being cleared.
    async with scan_guard(key, settings=settings, sessions=sessions, wait=True):
        base = Mirror(settings.resolved_mirror_dir, key).base
        # Set the mirror aside first (one atomic rename), so a failure leaves registry and mirror as
        # they were, and a deletion that fails later never leaves half a mirror under the live name.
        aside = base.with_name(f".cleared-{uuid.uuid4().hex}")
        try:
            await asyncio.to_thread(base.rename, aside)
        except FileNotFoundError:
            aside = None
        try:
            async with unit_of_work(sessions) as s:
                await registry.clear(s, key)
        except BaseException:
            if aside is not None:
                await asyncio.to_thread(aside.rename, base)
            raise
    if aside is not None:
        try:
            await asyncio.to_thread(shutil.rmtree, aside)
        except OSError as exc:
            log.warning("registry of %s cleared; its old mirror %s could not be deleted: %s", key, aside,
                        exc.strerror)
    return MessageResponse(message="Registry cleared")
