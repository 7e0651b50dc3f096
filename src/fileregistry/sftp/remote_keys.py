"""Keys for the asyncssh seam: the config's private keys and the expected host key.

Part of the seam with :mod:`fileregistry.sftp.remote` (the only other module importing asyncssh).
Errors never echo key material.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncssh

from fileregistry.errors import InvalidInput
from fileregistry.sftp.schemas import SFTPConfig


def load_client_keys(config: SFTPConfig) -> list[asyncssh.SSHKey] | None:
    """The private keys of ``config``; 422 naming the field if one cannot be read. Never echoes a key."""
    keys: list[asyncssh.SSHKey] = []
    if config.private_key is not None and config.private_key.get_secret_value().strip():
        text = config.private_key.get_secret_value().replace("\\n", "\n")  # keys pasted with literal \n
        try:
            keys.append(asyncssh.import_private_key(text))
        except (asyncssh.KeyImportError, ValueError, TypeError):
            raise InvalidInput(
                "private_key could not be read: expected an unencrypted OpenSSH or PEM private key "
                "(RSA, ECDSA or Ed25519)"
            ) from None
    if config.key_path:
        try:
            keys.append(asyncssh.read_private_key(config.key_path))
        except OSError as exc:
            raise InvalidInput(f"key_path {config.key_path!r} could not be read: {exc.strerror}") from None
        except (asyncssh.KeyImportError, ValueError, TypeError):
            raise InvalidInput(
                f"key_path {config.key_path!r} is not an unencrypted OpenSSH or PEM private key"
            ) from None
    return keys or None  # None: no public-key auth at all (never fall back to ~/.ssh or an agent)


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
