"""Keys for the asyncssh seam: the config's private keys and the expected host key.

Part of the seam with :mod:`fileregistry.sftp.remote` (the only other module importing asyncssh).
Errors never echo key material.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

import asyncssh

from fileregistry.errors import InvalidInput
from fileregistry.sftp.schemas import SFTPConfig

MAX_KEY_FILE_BYTES = 64 * 1024  # far above any RSA-16384 / ECDSA / Ed25519 private key file
OUTSIDE_KEY_DIR = "key_path must name a key file inside the key directory"
_KEY_FORMATS = "an unencrypted OpenSSH or PEM private key (RSA, ECDSA or Ed25519)"


def load_client_keys(config: SFTPConfig, *, key_dir: Path | str | None = None) -> list[asyncssh.SSHKey] | None:
    """The private keys of ``config``; 422 naming the field if one cannot be read. Never echoes a key.

    ``key_path`` may only name a regular file inside ``key_dir`` (``FILEREGISTRY_SFTP_KEY_DIR``, default
    ``<data_dir>/keys``; no ``key_dir``: no key_path is allowed). Bounded: one
    non-blocking open, an fstat and a read of at most :data:`MAX_KEY_FILE_BYTES`, so a FIFO, a device or
    a huge file cannot stall the event loop or fill memory.
    """
    keys: list[asyncssh.SSHKey] = []
    if config.private_key is not None and config.private_key.get_secret_value().strip():
        text = config.private_key.get_secret_value().replace("\\n", "\n")  # keys pasted with literal \n
        try:
            keys.append(asyncssh.import_private_key(text))
        except (asyncssh.KeyImportError, ValueError, TypeError):
            raise InvalidInput(f"private_key could not be read: expected {_KEY_FORMATS}") from None
    if config.key_path:
        if key_dir is None:
            raise InvalidInput(OUTSIDE_KEY_DIR)
        keys.append(read_key_file(config.key_path, key_dir))
    return keys or None  # None: no public-key auth at all (never fall back to ~/.ssh or an agent)


def key_file_path(key_path: str, key_dir: Path | str) -> str:
    """The real path of ``key_path`` (relative: to ``key_dir``) if it is inside ``key_dir``; else 422.

    A path whose plain text leaves the directory (``..``, another absolute path) is refused before the
    file system is asked anything about it; then symlinks are resolved and the result checked again.
    The message is the same whatever exists outside, so nothing outside can be probed.
    """
    base = os.path.realpath(key_dir)
    try:
        lexical = os.path.normpath(os.path.join(base, key_path))
        if not _strictly_inside(lexical, base):
            raise InvalidInput(OUTSIDE_KEY_DIR)
        real = os.path.realpath(lexical)
    except (ValueError, TypeError, OSError):  # NUL bytes, names too long, ...
        raise InvalidInput(OUTSIDE_KEY_DIR) from None
    if not _strictly_inside(real, base):
        raise InvalidInput(OUTSIDE_KEY_DIR)
    return real


def read_key_file(key_path: str, key_dir: Path | str) -> asyncssh.SSHKey:
    shown = repr(key_path if len(key_path) <= 200 else key_path[:200] + "...")
    path = key_file_path(key_path, key_dir)
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_NOCTTY | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)  # O_NONBLOCK: a FIFO opens at once (then fstat refuses it)
    except OSError:  # missing, unreadable, or swapped for a symlink since it was resolved: one message
        raise InvalidInput(f"key_path {shown}: no readable key file of that name in the key directory") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InvalidInput(f"key_path {shown} is not a regular file")
        if st.st_size > MAX_KEY_FILE_BYTES:
            raise InvalidInput(f"key_path {shown} is larger than {MAX_KEY_FILE_BYTES // 1024} KiB: not a private key")
        chunks: list[bytes] = []
        total = 0
        while total <= MAX_KEY_FILE_BYTES:
            chunk = os.read(fd, MAX_KEY_FILE_BYTES + 1 - total)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    except OSError:
        raise InvalidInput(f"key_path {shown}: no readable key file of that name in the key directory") from None
    finally:
        os.close(fd)
    if total > MAX_KEY_FILE_BYTES:  # it grew after the fstat
        raise InvalidInput(f"key_path {shown} is larger than {MAX_KEY_FILE_BYTES // 1024} KiB: not a private key")
    try:
        return asyncssh.import_private_key(b"".join(chunks))
    except (asyncssh.KeyImportError, ValueError, TypeError, UnicodeError):
        raise InvalidInput(f"key_path {shown} is not {_KEY_FORMATS}") from None


def _strictly_inside(path: str, base: str) -> bool:
    return path != base and os.path.commonpath([path, base]) == base


@dataclass(frozen=True)
class HostKeySpec:
    """What the server's host key must be: a whole key, or a SHA256 fingerprint."""

    key: asyncssh.SSHKey | None = None
    fingerprint: str | None = None
    source: str = "host_key"  # "host_key" (given in the config) or "known_hosts" (stored on first use)

    def describe(self) -> str:
        return self.fingerprint or (self.key.get_fingerprint("sha256") if self.key else "?")

    def matches(self, key: asyncssh.SSHKey) -> bool:
        if self.key is not None:
            return key == self.key
        return key.get_fingerprint("sha256") == self.fingerprint


def parse_host_key(value: str, *, source: str = "host_key") -> HostKeySpec:
    value = value.strip()
    if value.startswith("SHA256:"):
        if len(value) < 20 or any(c.isspace() for c in value):
            raise InvalidInput("host_key fingerprint must look like 'SHA256:<base64>'")
        return HostKeySpec(fingerprint=value.rstrip("="), source=source)
    try:
        return HostKeySpec(key=asyncssh.import_public_key(value), source=source)
    except (asyncssh.KeyImportError, ValueError, TypeError):
        raise InvalidInput(
            "host_key must be an OpenSSH public key line ('ssh-ed25519 AAAA...') or a 'SHA256:' fingerprint"
        ) from None


def key_line(key: asyncssh.SSHKey) -> str:
    return key.export_public_key("openssh").decode().strip()


def fingerprint(key: asyncssh.SSHKey) -> str:
    return key.get_fingerprint("sha256")
