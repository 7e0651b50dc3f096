"""The asyncssh seam: the only module that knows asyncssh.

Every asyncssh / OS error is translated here into ``fileregistry.errors`` classes whose messages
name the host and the cause and never contain a password or a key.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import posixpath
import socket
import stat as statmod
import struct
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncssh
from asyncssh.constants import (
    FXF_READ, FXP_CLOSE, FXP_DATA, FXP_HANDLE, FXP_NAME, FXP_OPEN, FXP_READ, FXP_READDIR, FXP_STATUS, MSG_IGNORE,
)
from asyncssh.packet import String, UInt32, UInt64
from asyncssh.encryption import get_default_encryption_algs

from fileregistry.config import Settings
from fileregistry.errors import AppError, NotFound, UpstreamError, UpstreamTimeout
from fileregistry.sftp.remote_keys import HostKeySpec, fingerprint, key_line, load_client_keys, parse_host_key
from fileregistry.sftp.schemas import SFTPConfig

__all__ = [
    "HostKeySpec",
    "MissingDirectory",
    "RemoteEntry",
    "RemoteSession",
    "fingerprint",
    "key_line",
    "load_client_keys",
    "connect_session",
    "open_session",
    "parse_host_key",
]

# AES-GCM first: on this kind of box it is far faster than asyncssh's default chacha20-poly1305.
_PREFERRED_CIPHERS = [b"aes128-gcm@openssh.com", b"aes256-gcm@openssh.com"]
ENCRYPTION_ALGS = [a.decode() for a in _PREFERRED_CIPHERS] + [
    a.decode() for a in get_default_encryption_algs() if a not in _PREFERRED_CIPHERS
]
READDIR_WINDOW = 32  # READDIR requests kept in flight by list_files


class MissingDirectory(NotFound):
    """A directory the operation needs is missing on the server (lifecycle dirs are made on first use)."""


# --------------------------------------------------------------------------- connecting


class _Client(asyncssh.SSHClient):
    """Sees the host key before authentication, so it can be refused (never a blind accept)."""

    def __init__(self, expected: HostKeySpec | None) -> None:
        self.expected = expected
        self.seen: asyncssh.SSHKey | None = None

    def validate_host_public_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        self.seen = key
        if self.expected is None:
            return True  # first use: the caller stores this key and requires it from now on
        return self.expected.matches(key)


@dataclass
class Endpoint:
    host: str
    port: int
    username: str

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def _connect_error(ep: Endpoint, exc: BaseException, client: _Client | None, timeout: float) -> AppError:
    where = f"SFTP server {ep}"
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return UpstreamTimeout(f"{where}: connection timed out after {timeout:g}s (no SSH handshake)")
    if isinstance(exc, asyncssh.HostKeyNotVerifiable):
        seen = fingerprint(client.seen) if client and client.seen else "an unusable key"
        exp = client.expected if client else None
        if exp is not None and exp.source == "known_hosts":
            why = (f"host key changed: the server presented {seen} but {exp.describe()} was stored on first "
                   "use (possible man-in-the-middle; clear the stored key if the change is expected)")
        elif exp is not None:
            why = f"host key mismatch: the server presented {seen}, the config's host_key is {exp.describe()}"
        else:
            why = "host key could not be verified"
        return UpstreamError(f"{where}: {why}")
    if isinstance(exc, asyncssh.PermissionDenied):
        return UpstreamError(f"{where}: authentication failed for user {ep.username!r}")
    if isinstance(exc, ConnectionRefusedError):
        return UpstreamError(f"{where}: connection refused")
    if isinstance(exc, socket.gaierror):
        return UpstreamError(f"{where}: unknown host {ep.host!r} ({exc.strerror})")
    if isinstance(exc, asyncssh.DisconnectError):
        return UpstreamError(f"{where}: SSH connection failed: {exc.reason}")
    if isinstance(exc, OSError):
        return UpstreamError(f"{where}: cannot connect: {exc.strerror or type(exc).__name__}")
    return UpstreamError(f"{where}: SSH connection failed ({type(exc).__name__})")


@contextlib.asynccontextmanager
async def open_session(
    config: SFTPConfig, *, settings: Settings, expected: HostKeySpec | None
) -> AsyncIterator[RemoteSession]:
    """Connect, authenticate and start SFTP; ``session.seen_host_key`` is the server's key."""
    session = await connect_session(config, settings=settings, expected=expected)
    try:
        yield session
    finally:
        await session.aclose()


async def connect_session(config: SFTPConfig, *, settings: Settings, expected: HostKeySpec | None) -> RemoteSession:
    """Like :func:`open_session`, for a caller (the pool) that closes it with ``aclose()``."""
    ep = Endpoint(config.host, config.port, config.username)
    client_keys = load_client_keys(config, key_dir=settings.resolved_sftp_key_dir)
    password = config.password.get_secret_value() if config.password else None
    client = _Client(expected)
    trusted = [expected.key] if expected is not None and expected.key is not None else []
    timeout = settings.sftp_connect_timeout
    try:
        async with asyncio.timeout(timeout):
            conn = await asyncssh.connect(
                config.host,
                config.port,
                username=config.username,
                password=password,
                client_keys=client_keys,
                client_factory=lambda: client,
                # Trusted keys steer the host-key algorithm; anything else goes to validate_host_public_key.
                known_hosts=(trusted, [], []),
                agent_path=None,
                config=None,
                gss_auth=False,
                gss_kex=False,
                kbdint_auth=False,
                encryption_algs=ENCRYPTION_ALGS,
                compression_algs=None,
                login_timeout=timeout,
                connect_timeout=timeout,
            )
            try:
                sftp = await conn.start_sftp_client()
            except BaseException:
                conn.close()
                raise
    except (OSError, asyncssh.Error, asyncio.TimeoutError) as exc:
        raise _connect_error(ep, exc, client, timeout) from None
    _skip_ignore_padding(conn)
    _skip_packet_logging(conn, sftp)
    _coalesce_writes(conn)
    return RemoteSession(ep, conn, sftp, settings, client.seen)


def _skip_ignore_padding(conn) -> None:
    """Stop asyncssh from sending an empty SSH_MSG_IGNORE before every encrypted packet.

    asyncssh (2.x, ``SSHConnection.send_packet``) precedes each packet with an IGNORE packet, which
    doubles the packets, encryptions and send() calls per SFTP request; it measured ~20-25% of the
    client CPU of a scan of many small files. IGNORE packets are optional padding (RFC 4253 11.2),
    useful against traffic analysis of CBC-mode keystrokes, not for bulk SFTP over AES-GCM; OpenSSH
    does not send them either. The filter is on this connection only, and only for MSG_IGNORE.
    """
    original = conn.send_packet

    def send_packet(pkttype: int, *args: bytes, handler=None) -> None:
        if pkttype != MSG_IGNORE:
            original(pkttype, *args, handler=handler)

    conn.send_packet = send_packet


def _coalesce_writes(conn) -> None:
    """Write the SSH packets made in one event-loop turn to the socket with one ``send()``.

    asyncssh hands every encrypted packet to the transport at once, and asyncio's transport sends it
    at once: one ``send()`` system call per packet, three per small file (OPEN, READ, CLOSE), and on
    loopback each also runs the receiver's TCP path and wakes the server. With 32 files in flight the
    packets of one turn are joined and sent together at the end of it (``call_soon``), in order.
    The transport is taken when the packet is made, so a packet queued before a close (which asyncssh
    schedules with ``call_soon`` too, after ours) is still written first, as before.
    """
    loop = asyncio.get_running_loop()
    pending: list[bytes] = []
    target: list = [None]

    def flush() -> None:
        transport, data = target[0], b"".join(pending)
        pending.clear()
        target[0] = None
        if transport is not None and not transport.is_closing():
            with contextlib.suppress(ConnectionError):
                transport.write(data)

    def send(data: bytes) -> None:
        transport = conn._transport
        if transport is None:
            return
        if pending and target[0] is not transport:  # pragma: no cover - asyncssh keeps one transport
            flush()
        if not pending:
            target[0] = transport
            loop.call_soon(flush)
        pending.append(data)

    conn._send = send


_U32 = struct.Struct(">I").unpack_from
_U64 = struct.Struct(">Q").unpack_from
_REG = statmod.S_IFREG
_READ_FLAGS = UInt32(FXF_READ)
_NO_ATTRS = asyncssh.SFTPAttrs().encode(3)


def _decode_names_v3(data: bytes) -> list[RemoteEntry]:
    """Regular files of one SFTP v3 SSH_FXP_NAME reply (draft-ietf-secsh-filexfer-02, 7).

    Names that are not valid UTF-8 are skipped: the API could not address them.
    """
    (count,) = _U32(data, 0)
    off, out = 4, []
    for _ in range(count):
        (n,) = _U32(data, off)
        name = data[off + 4 : off + 4 + n]
        off += 4 + n
        (n,) = _U32(data, off)  # longname
        off += 4 + n
        (flags,) = _U32(data, off)
        off += 4
        size = perms = mtime = None
        if flags & 0x1:  # SIZE
            (size,) = _U64(data, off)
            off += 8
        if flags & 0x2:  # UIDGID
            off += 8
        if flags & 0x4:  # PERMISSIONS
            (perms,) = _U32(data, off)
            off += 4
        if flags & 0x8:  # ACMODTIME: atime, mtime
            (mtime,) = _U32(data, off + 4)
            off += 8
        if flags & 0x80000000:  # EXTENDED: count, then (type, data) string pairs
            (ext,) = _U32(data, off)
            off += 4
            for _e in range(2 * ext):
                (n,) = _U32(data, off)
                off += 4 + n
        if perms is None or perms & 0o170000 != _REG:
            continue
        try:
            out.append(RemoteEntry(name.decode("utf-8"), size or 0, mtime))
        except UnicodeDecodeError:
            continue
    return out


def _skip_packet_logging(conn, sftp) -> None:
    """asyncssh formats a log line for every SSH and SFTP packet (names, byte counts) before the logger
    decides to drop it; ~10% of a small-file scan's CPU. Skip that on this connection unless asyncssh
    packet debugging is on."""
    if logging.getLogger("asyncssh").isEnabledFor(logging.DEBUG):
        return

    def _no_log(*_args, **_kwargs) -> None:
        return None

    for target in (conn, getattr(sftp, "_handler", None)):
        if target is not None:
            target.log_sent_packet = _no_log
            target.log_received_packet = _no_log


def _consume(fut: asyncio.Future) -> None:
    if not fut.cancelled():
        fut.exception()  # a reply we do not need; only mark any error as retrieved


# --------------------------------------------------------------------------- SFTP operations


@dataclass(slots=True)
class RemoteEntry:
    name: str
    size: int
    mtime: int | None


class RemoteSession:
    """SFTP operations on one authenticated connection; every error comes out translated."""

    def __init__(self, ep: Endpoint, conn, sftp: asyncssh.SFTPClient, settings: Settings, seen) -> None:
        self.endpoint = ep
        self.seen_host_key: asyncssh.SSHKey | None = seen
        self._conn = conn
        self._sftp = sftp
        # The low-level request handler: asyncssh's public API waits for one round trip per READDIR and
        # wraps every open file in an SFTPClientFile. The handler lets us keep many requests in flight and
        # spend less CPU per small file (paramiko's listdir_iter does the same for listings).
        self._h = sftp._handler  # noqa: SLF001
        self._poisoned = False
        self._op_timeout = settings.sftp_op_timeout
        self._dl_timeout = settings.sftp_download_timeout
        self._max_read = max(4096, int(getattr(self._h.limits, "max_read_len", 0) or 32768))
        self._v3 = getattr(self._h, "_version", 0) == 3

    def reusable(self) -> bool:
        """Open, and no request on it timed out or lost the connection (the server may be stuck)."""
        return not self._poisoned and not self._conn.is_closed()

    async def aclose(self) -> None:
        self._sftp.exit()
        self._conn.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._conn.wait_closed(), 2)

    @contextlib.contextmanager
    def _translate(self, what: str, path: str) -> Iterator[None]:
        where = f"SFTP server {self.endpoint}"
        try:
            yield
        except (asyncio.TimeoutError, TimeoutError):
            self._poisoned = True
            raise UpstreamTimeout(f"{where}: {what} {path!r} timed out") from None
        except asyncssh.SFTPNoSuchFile:
            raise NotFound(f"{where}: {path!r} does not exist") from None
        except asyncssh.SFTPPermissionDenied:
            raise UpstreamError(f"{where}: {what} {path!r}: permission denied") from None
        except asyncssh.SFTPError as exc:
            raise UpstreamError(f"{where}: {what} {path!r} failed: {exc.reason or type(exc).__name__}") from None
        except (asyncssh.Error, OSError) as exc:
            self._poisoned = True
            raise UpstreamError(f"{where}: {what} {path!r} failed: connection lost ({type(exc).__name__})") from None

    async def kind(self, path: str) -> str | None:
        """'dir', 'file', 'other' or None if missing."""
        with self._translate("stat", path):
            try:
                async with asyncio.timeout(self._op_timeout):
                    attrs = await self._sftp.stat(path)
            except asyncssh.SFTPNoSuchFile:
                return None
        mode = attrs.permissions or 0
        if statmod.S_ISDIR(mode):
            return "dir"
        return "file" if statmod.S_ISREG(mode) else "other"

    async def list_files(self, path: str) -> list[RemoteEntry]:
        """Regular files directly in ``path`` (no recursion), with READDIRs pipelined.

        OpenSSH answers at most 100 names per READDIR; waiting for each reply (as ``SFTPClient.scandir``
        does) makes a big listing round-trip bound, so READDIR_WINDOW requests stay in flight (requests
        on one handle are answered in order; paramiko's ``listdir_iter`` does the same). On SFTP v3
        (OpenSSH) the NAME replies are decoded by :func:`_decode_names_v3`, which reads only the fields
        we use: asyncssh builds an SFTPName and an SFTPAttrs record per entry, most of the CPU of a
        100,000-file re-scan.
        """
        h, out = self._h, []
        raw = getattr(h, "_version", 0) == 3
        with self._translate("listing", path):
            async with asyncio.timeout(self._op_timeout):
                handle = await h.opendir(path.encode())
            try:
                pending: deque[asyncio.Future] = deque(self._readdir(handle, raw) for _ in range(READDIR_WINDOW))
                done = False
                try:
                    while pending:
                        fut = pending.popleft()
                        try:
                            async with asyncio.timeout(self._op_timeout):
                                entries = await fut
                        except asyncssh.SFTPEOFError:
                            done = True
                            continue
                        out.extend(entries)
                        if not done:
                            pending.append(self._readdir(handle, raw))
                finally:
                    for f in pending:
                        f.cancel()
            finally:
                await self._close_handle(handle)
        return out

    def _readdir(self, handle: bytes, raw: bool) -> asyncio.Future:
        if not raw:
            return asyncio.ensure_future(self._readdir_decoded(handle))
        loop = asyncio.get_running_loop()
        reply: asyncio.Future = loop.create_future()
        result: asyncio.Future = loop.create_future()

        def on_reply(f: asyncio.Future) -> None:
            if result.done():
                return
            if f.cancelled():
                result.cancel()
                return
            if f.exception() is not None:
                result.set_exception(f.exception())
                return
            pkttype, packet = f.result()
            try:
                if pkttype == FXP_NAME:
                    result.set_result(_decode_names_v3(packet.get_remaining_payload()))
                else:  # a STATUS: EOF at the end, or an error; asyncssh turns it into its exception
                    self._h._process_status(packet)  # noqa: SLF001
                    raise asyncssh.SFTPBadMessage("unexpected OK reply to READDIR")
            except Exception as exc:  # noqa: BLE001 - handed to the awaiting listing
                result.set_exception(exc)

        reply.add_done_callback(on_reply)
        result.add_done_callback(_consume)
        self._h._send_request(FXP_READDIR, (String(handle),), reply)  # noqa: SLF001
        return result

    async def _readdir_decoded(self, handle: bytes) -> list[RemoteEntry]:
        names, _at_end = await self._h.readdir(handle)
        out = []
        for n in names:
            mode = n.attrs.permissions
            if mode is None or not statmod.S_ISREG(mode):
                continue
            try:
                out.append(RemoteEntry(n.filename.decode("utf-8"), n.attrs.size or 0, n.attrs.mtime))
            except UnicodeDecodeError:
                continue
        return out

    def _close_nowait(self, handle: bytes) -> None:
        # Nothing waits for this CLOSE: a failed close of a read-only handle changes nothing for us.
        fut = asyncio.get_running_loop().create_future()
        fut.add_done_callback(_consume)
        try:
            self._h._send_request(FXP_CLOSE, (String(handle),), fut)  # noqa: SLF001
        except Exception:  # noqa: BLE001 - connection already closing; the next request will say so
            fut.cancel()

    async def _close_handle(self, handle: bytes) -> None:
        # Bounded: after a timed-out request the server may never answer (and the caller is already
        # failing for a better reason than a failed CLOSE).
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._h.close(handle), self._op_timeout)

    async def ensure_dir(self, path: str) -> None:
        """Create ``path`` if missing; refuse if something else is there."""
        kind = await self.kind(path)
        if kind == "dir":
            return
        if kind is not None:
            raise UpstreamError(f"SFTP server {self.endpoint}: {path!r} exists but is not a directory")
        with self._translate("mkdir", path):
            try:
                async with asyncio.timeout(self._op_timeout):
                    await self._sftp.mkdir(path)
            except asyncssh.SFTPError:
                if await self.kind(path) != "dir":  # lost a race to another creator is fine
                    raise

    async def rename_noclobber(self, src: str, dst: str) -> bool:
        """Rename; False if ``dst`` exists. Never overwrites: OpenSSH's SFTP v3 RENAME refuses an existing
        target (it links, then unlinks), and we never use posix-rename@openssh.com.

        Raises :class:`MissingDirectory` if ``dst``'s directory does not exist, :class:`NotFound` if
        ``src`` does not. The happy path is one round trip; the failure is diagnosed afterwards.
        """
        with self._translate("rename", src):
            try:
                async with asyncio.timeout(self._op_timeout):
                    await self._sftp.rename(src, dst)
                return True
            except asyncssh.SFTPError:
                if await self.kind(dst) is not None:
                    return False
                if await self.kind(src) is None:
                    raise NotFound(f"SFTP server {self.endpoint}: {src!r} does not exist") from None
                parent = posixpath.dirname(dst)
                kind = await self.kind(parent)
                if kind is None:
                    raise MissingDirectory(f"SFTP server {self.endpoint}: {parent!r} does not exist") from None
                if kind != "dir":
                    raise UpstreamError(
                        f"SFTP server {self.endpoint}: {parent!r} exists but is not a directory"
                    ) from None
                raise

    async def download(self, path: str, dest: str | Path, size: int) -> int:
        """Write ``path`` to local ``dest``; return the byte count written.

        The caller compares it with ``size``: any other count means the file changed since it was listed.
        """
        with self._translate("download", path):
            async with asyncio.timeout(self._dl_timeout):
                if size + 1 <= self._max_read:
                    return await self._download_small(path, dest, size)
                return await self._download_large(path, dest, size)

    async def _v3_request(self, pkttype: int, want: int, *args: bytes):
        """One SFTP v3 request whose reply is ``want`` (or a STATUS, raised as asyncssh's exception).

        What ``SFTPClientHandler.open`` / ``read`` do, minus their per-request debug log calls, whose
        arguments (hex handles, plural texts) are built even when DEBUG is off."""
        fut = asyncio.get_running_loop().create_future()
        self._h._send_request(pkttype, args, fut)
        resptype, packet = await fut
        if resptype == want:
            return packet
        if resptype == FXP_STATUS:
            self._h._process_status(packet)  # raises the error (EOF, no such file, ...)
        raise asyncssh.SFTPBadMessage(f"unexpected response type: {resptype}")

    async def _open_read(self, path: str) -> bytes:
        if self._v3:
            packet = await self._v3_request(FXP_OPEN, FXP_HANDLE, String(path.encode()), _READ_FLAGS, _NO_ATTRS)
            handle = packet.get_string()
            packet.check_end()
            return handle
        return await self._h.open(path.encode(), FXF_READ, asyncssh.SFTPAttrs())

    async def _read(self, handle: bytes, offset: int, length: int) -> bytes:
        if self._v3:
            packet = await self._v3_request(FXP_READ, FXP_DATA, String(handle), UInt64(offset), UInt32(length))
            data = packet.get_string()
            packet.check_end()
            return data
        return (await self._h.read(handle, offset, length))[0]

    async def _download_small(self, path: str, dest: str | Path, size: int) -> int:
        # OPEN, one READ asking one byte past the expected size, CLOSE without waiting for its reply:
        # two round trips and little CPU per file.
        handle = await self._open_read(path)
        try:
            parts, got = [], 0
            while got <= size:
                want = size + 1 - got
                try:
                    data = await self._read(handle, got, want)
                except asyncssh.SFTPEOFError:
                    break
                parts.append(data)
                got += len(data)
                if not data or (got == size and len(data) < want):
                    # Asked for one byte more than listed and got exactly the listed size: that is
                    # end of file (OpenSSH answers reads in full up to its limit), so skip the READ
                    # that would only say EOF.
                    break
        except BaseException:
            await self._close_handle(handle)
            raise
        self._close_nowait(handle)
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(parts[0] if len(parts) == 1 else b"".join(parts))
            while view:  # os.write may write less than asked (a full disk, a signal)
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        return got

    async def _download_large(self, path: str, dest: str | Path, size: int) -> int:
        # asyncssh's parallel copier keeps many READs in flight and writes each block as it arrives
        # (measured a little faster than reading fixed chunks ourselves). It copies the size it stats
        # when it opens the file, so a change between the listing and that stat shows in the byte
        # count; a file still growing after it is copied up to its listed size, and the next scan
        # sees the new size and downloads it again.
        await self._sftp.get(path, os.fspath(dest), block_size=self._max_read, max_requests=128)
        return os.path.getsize(dest)

    # ----------------------------------------------------------------- tree walk (fileregistry vfs-from-sftp)

    async def list_dir(self, path: str, errors: list[str] | None = None) -> list[RemoteDirEntry]:
        """Every entry of directory ``path`` (files, directories, symlinks, others; not ``.``/``..``),
        sorted by name, with the attributes the server sends (``lstat``: links are not followed).

        Owner and group names come from SFTP v4+ attributes, else from OpenSSH's ``ls -l`` style
        longname, else they are the numeric ids. A name that is not UTF-8 (or holds a ``/``) is
        skipped and described in ``errors`` (raised as :class:`UpstreamError` without it).
        """
        h, out = self._h, []
        with self._translate("listing", path):
            async with asyncio.timeout(self._op_timeout):
                handle = await h.opendir(path.encode())
            try:
                while True:
                    try:
                        async with asyncio.timeout(self._op_timeout):
                            names, _at_end = await h.readdir(handle)
                    except asyncssh.SFTPEOFError:
                        break
                    for n in names:
                        raw = n.filename if isinstance(n.filename, bytes) else n.filename.encode()
                        if raw in (b".", b".."):
                            continue
                        try:
                            name = raw.decode("utf-8")
                            if "/" in name or "\x00" in name:
                                raise ValueError
                        except ValueError:
                            problem = (f"SFTP server {self.endpoint}: skipped {raw!r} in {path!r}: "
                                       "not a UTF-8 file name")
                            if errors is None:
                                raise UpstreamError(problem) from None
                            errors.append(problem)
                            continue
                        out.append(_dir_entry(name, n.attrs, n.longname))
            finally:
                await self._close_handle(handle)
        out.sort(key=lambda e: e.name)
        return out

    async def walk(
        self, top: str, errors: list[str] | None = None
    ) -> AsyncIterator[tuple[str, list[RemoteDirEntry]]]:
        """Depth first, pre-order: ``(path relative to top, its entries)`` for ``top`` and every directory
        below it, each directory's entries together, in name order. Symlinks are listed, never followed.

        With ``errors`` a directory below ``top`` that cannot be listed is described there and skipped
        (``top`` itself always raises); without it the first error is raised.
        """
        stack: list[str] = [""]
        while stack:
            rel = stack.pop()
            full = posixpath.join(top, rel) if rel else top
            try:
                entries = await self.list_dir(full, errors)
            except (NotFound, UpstreamError) as exc:
                if errors is None or not rel or not self.reusable():  # the connection is gone: stop
                    raise
                errors.append(exc.message)
                continue
            yield rel, entries
            stack.extend(posixpath.join(rel, e.name) if rel else e.name
                         for e in reversed(entries) if e.kind == "dir")


@dataclass(slots=True)
class RemoteDirEntry:
    """One entry of :meth:`RemoteSession.list_dir`. ``kind``: 'dir', 'file', 'link' or 'other'."""

    name: str
    kind: str
    size: int | None
    mtime: int | None
    atime: int | None
    permissions: int | None  # the 0o7777 bits
    uid: int | None
    gid: int | None
    owner: str | None
    group: str | None


def _dir_entry(name: str, attrs: asyncssh.SFTPAttrs, longname) -> RemoteDirEntry:
    mode = attrs.permissions
    fmt = statmod.S_IFMT(mode) if mode is not None else _REG
    kind = {statmod.S_IFDIR: "dir", statmod.S_IFREG: "file", statmod.S_IFLNK: "link"}.get(fmt, "other")
    owner, group = attrs.owner, attrs.group  # SFTP v4+
    if (owner is None or group is None) and longname:
        # OpenSSH (v3): "drwxr-xr-x    2 alice    staff        4096 Jan  1 12:00 name"
        text = longname.decode("utf-8", "replace") if isinstance(longname, bytes) else longname
        parts = text.split(None, 5)
        if len(parts) >= 5 and len(parts[0]) == 10 and parts[1].isdigit() and parts[4].isdigit():
            owner = owner if owner is not None else parts[2]
            group = group if group is not None else parts[3]
    if owner is None and attrs.uid is not None:
        owner = str(attrs.uid)
    if group is None and attrs.gid is not None:
        group = str(attrs.gid)
    return RemoteDirEntry(
        name=name, kind=kind, size=attrs.size, mtime=attrs.mtime, atime=attrs.atime,
        permissions=(mode & 0o7777) if mode is not None else None,
        uid=attrs.uid, gid=attrs.gid, owner=owner, group=group,
    )
