"""Lifecycle moves: new -> processing -> completed | error, on the server, in the mirror, in the registry.

Order and undo: (1) rename on the server (never overwriting), (2) the same move in the mirror,
(3) the registry row and its event, committed. If (2) or (3) fails, the earlier steps are rolled back
(best effort) so the three stay in step; a failed (1) changes nothing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import posixpath

from fileregistry.config import Settings
from fileregistry.db import utcnow
from fileregistry.errors import AppError, Conflict, NotFound, UpstreamError
from fileregistry.sftp import registry
from fileregistry.sftp.connections import Sessions, connect, connection_lock
from fileregistry.sftp.mirror import Mirror, MirrorError
from fileregistry.sftp.models import TrackedFile
from fileregistry.sftp.names import (
    COMPLETED,
    ERROR,
    NEW,
    PROCESSING,
    connection_key,
    processing_name,
    remote_dir,
    validate_filename,
)
from fileregistry.sftp.remote import MissingDirectory, RemoteSession
from fileregistry.sftp.schemas import MarkFinishedResponse, MarkProcessingResponse, SFTPConfig

log = logging.getLogger(__name__)
MAX_NAME_ATTEMPTS = 100


async def mark_processing(
    config: SFTPConfig, filename: str, *, settings: Settings, sessions: Sessions
) -> MarkProcessingResponse:
    new_name = await _transition(config, filename, NEW, PROCESSING, settings=settings, sessions=sessions)
    return MarkProcessingResponse(message=f"File {filename} moved to processing.", new_filename=new_name)


async def mark_completed(
    config: SFTPConfig, filename: str, *, settings: Settings, sessions: Sessions
) -> MarkFinishedResponse:
    return await _finish(config, filename, COMPLETED, settings=settings, sessions=sessions)


async def mark_error(
    config: SFTPConfig, filename: str, *, settings: Settings, sessions: Sessions
) -> MarkFinishedResponse:
    return await _finish(config, filename, ERROR, settings=settings, sessions=sessions)


async def _finish(config, filename, to_state, *, settings, sessions):
    new_name = await _transition(config, filename, PROCESSING, to_state, settings=settings, sessions=sessions)
    message = f"File {filename} moved to {to_state}."
    # The seed's shape; plus the new name when a collision forced one.
    return MarkFinishedResponse(message=message, new_filename=None if new_name == filename else new_name)


def _candidate(filename: str, to_state: str, when, attempt: int) -> str:
    if to_state == PROCESSING:
        return processing_name(filename, when, attempt)
    if attempt == 0:
        return filename
    stem, ext = posixpath.splitext(filename)
    return f"{stem}_{attempt}{ext}"


async def _expect(session, key: str, state: str, filename: str) -> TrackedFile:
    row = await registry.find(session, key, state, filename)
    if row is not None:
        return row
    other = await registry.find_elsewhere(session, key, state, filename)
    if other is not None:
        as_name = f" as {other.name!r}" if other.name != filename else ""
        raise Conflict(f"File {filename} is not in state {state!r}: it is in state {other.state!r}{as_name}")
    raise NotFound(f"File {filename} is not tracked in state {state!r} for this connection")


async def _transition(
    config: SFTPConfig, filename: str, from_state: str, to_state: str, *, settings: Settings, sessions: Sessions
) -> str:
    validate_filename(filename)  # 400 before any I/O
    key = connection_key(config.host, config.remote_path)
    mirror = Mirror(settings.resolved_mirror_dir, key)
    async with sessions() as s:  # cheap pre-check: a wrong state answers without touching the server
        await _expect(s, key, from_state, filename)
    async with connect(config, settings=settings, sessions=sessions) as rs, connection_lock(key):
        async with sessions() as s:
            row = await _expect(s, key, from_state, filename)  # again, under the lock
            src = f"{remote_dir(config.remote_path, from_state)}/{filename}"
            dst_dir = remote_dir(config.remote_path, to_state)
            target = await _rename(rs, s, mirror, key, filename, src, dst_dir, to_state,
                                   recheck=lambda: connect(config, settings=settings, sessions=sessions))
            dst = f"{dst_dir}/{target}"
            try:
                await _mirror_move(rs, mirror, from_state, filename, to_state, target, dst, row.size)
            except BaseException:
                await _undo_remote(rs, dst, src)
                raise
            try:
                await registry.move(s, row, to_state, target)
                await s.commit()
            except BaseException:
                await s.rollback()
                with contextlib.suppress(Exception):
                    mirror.move(to_state, target, from_state, filename)
                await _undo_remote(rs, dst, src)
                raise
    return target


async def _rename(rs: RemoteSession, s, mirror: Mirror, key, filename, src, dst_dir, to_state, *, recheck) -> str:
    """Rename ``src`` into ``dst_dir`` under the first free name; never overwrites anything."""
    when = utcnow()
    for attempt in range(MAX_NAME_ATTEMPTS):
        target = _candidate(filename, to_state, when, attempt)
        if len(target.encode()) > 255:
            raise Conflict(f"File {filename}: the name in {to_state!r} would be longer than 255 bytes")
        if await registry.name_taken(s, key, to_state, target) or mirror.exists(to_state, target):
            continue
        dst = f"{dst_dir}/{target}"
        try:
            try:
                renamed = await rs.rename_noclobber(src, dst)
            except MissingDirectory:  # lifecycle directories are created on first use
                await rs.ensure_dir(dst_dir)
                renamed = await rs.rename_noclobber(src, dst)
        except AppError:
            # A RENAME whose answer never came (timeout, connection lost) may still have been done by
            # the server. Ask again on a fresh connection; if it was done, finish the move (mirror and
            # registry) instead of leaving a file in to_state/ that the registry still has in from_state.
            if not rs.reusable() and await _was_renamed(recheck, src, dst):
                log.warning("rename %s -> %s: the answer was lost but the server did it; finishing the move",
                            src, dst)
                return target
            raise
        if renamed:
            return target
    raise Conflict(f"File {filename}: no free name in {to_state!r} after {MAX_NAME_ATTEMPTS} attempts")


async def _was_renamed(recheck, src: str, dst: str) -> bool:
    """On a new connection: is ``src`` gone and ``dst`` a file? Any doubt (or failure) is a no."""
    try:
        async with recheck() as rs2:
            return await rs2.kind(src) is None and await rs2.kind(dst) == "file"
    except Exception:  # noqa: BLE001 - the original error is the one to report
        return False


async def _mirror_move(rs, mirror: Mirror, from_state, filename, to_state, target, remote_dst, size) -> None:
    if mirror.exists(from_state, filename):
        mirror.move(from_state, filename, to_state, target)
        return
    # The mirror lost its copy (deleted by hand, or the mirror dir is new): fetch it again.
    log.warning("mirror copy of %s/%s missing; downloading it again", from_state, filename)
    mirror.ensure_state_dir(to_state)
    tmp = mirror.temp_dir() / f"mv-{os.getpid()}-{id(target)}.part"
    try:
        got = await rs.download(remote_dst, tmp, size)
        if got != size:
            raise MirrorError(f"mirror copy of {filename!r} could not be restored: size changed on the server")
        os.link(tmp, mirror.path(to_state, target))
    except OSError as exc:
        raise MirrorError(f"mirror copy of {filename!r} could not be written: {exc.strerror}") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


async def _undo_remote(rs: RemoteSession, dst: str, src: str) -> None:
    try:
        if not await rs.rename_noclobber(dst, src):
            raise UpstreamError(f"cannot move {dst!r} back: {src!r} exists again")
    except AppError as exc:
        log.error("rollback of remote rename %s -> %s failed: %s", src, dst, exc.message)
