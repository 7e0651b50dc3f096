"""``fileregistry vfs-from-dir`` / ``vfs-from-sftp``: a real tree as an upload body (JSON Lines).

One line per file or directory, in the format of Alation's *Upload Virtual File System* API (the
seed's sample): ``path`` is the parent (``"/"`` at the top, ``"/var/log/"`` below), then ``name``,
``is_directory``, ``size_in_bytes`` (0 for directories), ``ts_last_modified``, ``ts_last_accessed``
(``YYYY-mm-dd HH:MM:SS``, UTC), ``owner``, ``group`` and ``permission_bits`` (three octal digits as an
integer: ``0o755`` -> ``755``). The walked directory itself is the root of the file system.

Streaming: one directory's entries are held at a time (plus the names of directories still to visit),
written in name order, each directory's entries together (depth first), so the output is deterministic.
Symlinks are listed as files (their own ``lstat``) and not followed, unless ``--follow-symlinks``.
A directory that cannot be read, or a name that is not UTF-8, is reported on stderr and skipped; the
rest is still written and the exit code is 1.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import stat as statmod
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import orjson
import typer

from fileregistry.errors import AppError, InvalidInput, NotFound


@dataclass(slots=True)
class Entry:
    name: str
    is_dir: bool
    size: int | None
    mtime: int | None
    atime: int | None
    owner: str | None
    group: str | None
    mode: int | None  # permission bits (0o777 used)


# --------------------------------------------------------------------------- the line format


def _ts(secs: int | None) -> str | None:
    from fileregistry.vfs.records import format_timestamp

    if secs is None:
        return None
    try:
        return format_timestamp(secs)
    except (OverflowError, OSError, ValueError):  # far outside what gmtime handles: leave it out
        return None


def entry_line(parent: str, e: Entry) -> bytes:
    """One upload line; ``parent`` is the directory's path below the root ("" for the root)."""
    obj: dict[str, object] = {"path": f"/{parent}/" if parent else "/", "name": e.name, "is_directory": e.is_dir}
    if e.is_dir:
        obj["size_in_bytes"] = 0
    elif e.size is not None:
        obj["size_in_bytes"] = e.size
    mtime, atime = _ts(e.mtime), _ts(e.atime)
    if mtime is not None:
        obj["ts_last_modified"] = mtime
    if atime is not None:
        obj["ts_last_accessed"] = atime
    if e.owner is not None:
        obj["owner"] = e.owner
    if e.group is not None:
        obj["group"] = e.group
    if e.mode is not None:
        obj["permission_bits"] = int(f"{e.mode & 0o777:o}")
    return orjson.dumps(obj) + b"\n"


class Counter:
    def __init__(self) -> None:
        self.dirs = 0
        self.files = 0

    def write(self, out: BinaryIO, tree: Iterable[tuple[str, list[Entry]]]) -> None:
        for parent, entries in tree:
            out.write(b"".join(entry_line(parent, e) for e in entries))
            for e in entries:
                if e.is_dir:
                    self.dirs += 1
                else:
                    self.files += 1


# --------------------------------------------------------------------------- local trees


class _Names:
    """uid/gid -> user/group name (the id as text when unknown), cached."""

    def __init__(self) -> None:
        self.users: dict[int, str] = {}
        self.groups: dict[int, str] = {}

    def user(self, uid: int) -> str:
        name = self.users.get(uid)
        if name is None:
            import pwd

            try:
                name = pwd.getpwuid(uid).pw_name
            except KeyError:
                name = str(uid)
            self.users[uid] = name
        return name

    def group(self, gid: int) -> str:
        name = self.groups.get(gid)
        if name is None:
            import grp

            try:
                name = grp.getgrgid(gid).gr_name
            except KeyError:
                name = str(gid)
            self.groups[gid] = name
        return name


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # os.fsdecode's surrogate escapes: the name is not UTF-8
        return False
    return True


def _show(path: str) -> str:
    """``path`` quoted for a message; a name that is not UTF-8 shows its bytes (b'...\\xff')."""
    return repr(path) if _utf8(path) else repr(os.fsencode(path))


def walk_local(top: str, errors: list[str], *, follow_symlinks: bool = False) -> Iterator[tuple[str, list[Entry]]]:
    """``(directory below top, its entries)`` depth first, each directory's entries sorted by name.

    ``top`` must be a readable directory (else :class:`AppError`); problems below it go to ``errors``.
    """
    names = _Names()
    # (relative path, (dev, ino) of it and its ancestors: only kept when following links, for loops)
    stack: list[tuple[str, frozenset]] = [("", frozenset())]
    if follow_symlinks:
        st = os.stat(top)
        stack = [("", frozenset({(st.st_dev, st.st_ino)}))]
    while stack:
        rel, ancestors = stack.pop()
        full = os.path.join(top, rel) if rel else top
        try:
            with os.scandir(full) as it:
                found = sorted(it, key=lambda d: d.name)
        except OSError as exc:
            if not rel:
                raise InvalidInput(f"cannot read directory {_show(top)}: {exc.strerror or type(exc).__name__}") from None
            errors.append(f"cannot read directory {_show(full)}: {exc.strerror or type(exc).__name__}")
            continue
        entries: list[Entry] = []
        subdirs: list[tuple[str, frozenset]] = []
        for d in found:
            if not _utf8(d.name):
                errors.append(f"skipped {_show(d.path)}: the name is not UTF-8")
                continue
            try:
                st = d.stat(follow_symlinks=False)
                if follow_symlinks and statmod.S_ISLNK(st.st_mode):
                    with contextlib.suppress(OSError):  # a dangling link stays a link
                        st = d.stat(follow_symlinks=True)
            except OSError as exc:
                errors.append(f"cannot stat {_show(d.path)}: {exc.strerror or type(exc).__name__}")
                continue
            is_dir = statmod.S_ISDIR(st.st_mode)
            entries.append(Entry(
                name=d.name, is_dir=is_dir, size=st.st_size,
                mtime=st.st_mtime_ns // 1_000_000_000, atime=st.st_atime_ns // 1_000_000_000,
                owner=names.user(st.st_uid), group=names.group(st.st_gid), mode=st.st_mode,
            ))
            if is_dir:
                child = posixpath.join(rel, d.name) if rel else d.name
                if follow_symlinks:
                    ident = (st.st_dev, st.st_ino)
                    if ident in ancestors:
                        errors.append(f"not descending into {_show(d.path)}: a symlink loop")
                        continue
                    subdirs.append((child, ancestors | {ident}))
                else:
                    subdirs.append((child, ancestors))
        yield rel, entries
        stack.extend(reversed(subdirs))


# --------------------------------------------------------------------------- remote trees


def _from_remote(e) -> Entry:
    return Entry(name=e.name, is_dir=e.kind == "dir", size=e.size, mtime=e.mtime, atime=e.atime,
                 owner=e.owner, group=e.group, mode=e.permissions)


# --------------------------------------------------------------------------- output


@contextlib.contextmanager
def _open_output(output: Path | None) -> Iterator[BinaryIO]:
    """stdout, or ``output`` written through a temp file renamed into place at the end (so a cut run
    never leaves a complete-looking but partial file)."""
    if output is None:
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    try:
        f = open(tmp, "wb")  # noqa: SIM115
    except OSError as exc:
        raise InvalidInput(f"cannot write {str(output)!r}: {exc.strerror or type(exc).__name__}") from None
    try:
        with f:
            yield f
        os.replace(tmp, output)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _finish(counter: Counter, errors: list[str], output: Path | None, printed: int) -> None:
    for msg in errors[printed:]:
        typer.echo(f"warning: {msg}", err=True)
    where = str(output) if output else "stdout"
    typer.echo(f"wrote {counter.dirs} directories and {counter.files} files to {where}", err=True)
    if errors:
        n = len(errors)
        raise AppError(f"{n} {'entry' if n == 1 else 'entries'} could not be read (see the warnings above); "
                       "the output lacks them")


def _stream_errors(tree: Iterable[tuple[str, list[Entry]]], errors: list[str], printed: list[int]):
    """Pass the tree through, printing each new problem on stderr as soon as it is found."""
    for item in tree:
        while printed[0] < len(errors):
            typer.echo(f"warning: {errors[printed[0]]}", err=True)
            printed[0] += 1
        yield item


def register(app: typer.Typer) -> None:
    app.command("vfs-from-dir")(vfs_from_dir)
    app.command("vfs-from-sftp")(vfs_from_sftp)


def vfs_from_dir(
    path: Path = typer.Argument(..., help="Local directory: it becomes the root of the file system."),
    output: Path | None = typer.Option(None, "-o", "--output", help="File to write; stdout by default."),
    follow_symlinks: bool = typer.Option(False, "--follow-symlinks",
                                         help="Describe what symlinks point to, and descend into linked directories."),
) -> None:
    """Write a local directory tree as JSON Lines in the upload format (see 'fs upload')."""
    top = os.fspath(path)
    if not os.path.exists(top):
        raise NotFound(f"{_show(top)} does not exist")
    if not os.path.isdir(top):
        raise InvalidInput(f"{_show(top)} is not a directory")
    errors: list[str] = []
    printed = [0]
    counter = Counter()
    try:
        with _open_output(output) as out:
            tree = walk_local(top, errors, follow_symlinks=follow_symlinks)
            counter.write(out, _stream_errors(tree, errors, printed))
    except BrokenPipeError:
        _quiet_broken_pipe()
    _finish(counter, errors, output, printed[0])


def vfs_from_sftp(
    source: str = typer.Argument(..., help="Stored source name (see 'fileregistry source list')."),
    output: Path | None = typer.Option(None, "-o", "--output", help="File to write; stdout by default."),
    subdir: str | None = typer.Option(None, "--path", help="Remote directory to walk: absolute, or relative to "
                                      "the source's remote path (default: the remote path)."),
) -> None:
    """Write the remote tree of a stored source, walked over SFTP, as JSON Lines in the upload format."""
    from fileregistry.cli.local import run_local
    from fileregistry.sftp.connections import connect
    from fileregistry.sources import service

    service.check_name(source)
    if subdir is not None and ("\x00" in subdir or not subdir):
        raise InvalidInput("--path must be a non-empty path")
    errors: list[str] = []
    printed = [0]
    counter = Counter()

    async def go(local) -> None:
        config = await service.resolve_config(local.sessions, local.cipher, source)
        top = config.remote_path if subdir is None else posixpath.join(config.remote_path, subdir)
        async with connect(config, settings=local.settings, sessions=local.sessions) as rs:
            kind = await rs.kind(top)
            if kind is None:
                raise NotFound(f"SFTP server {rs.endpoint}: {top!r} does not exist")
            if kind != "dir":
                raise InvalidInput(f"SFTP server {rs.endpoint}: {top!r} is not a directory")
            with _open_output(output) as out:
                async for rel, entries in rs.walk(top, errors):
                    counter.write(out, _stream_errors([(rel, [_from_remote(e) for e in entries])], errors, printed))

    try:
        run_local(go)
    except BrokenPipeError:
        _quiet_broken_pipe()
    _finish(counter, errors, output, printed[0])


def _quiet_broken_pipe() -> None:
    """The reader went away (``| head``): stop quietly, like other Unix tools."""
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    raise typer.Exit(1)


__all__ = ["entry_line", "register", "walk_local"]
