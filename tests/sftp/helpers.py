"""Helpers of the SFTP monitor tests."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from fileregistry.sftp.mirror import encode_key
from fileregistry.sftp.names import connection_key


class Zone:
    """A landing zone ``<sshd.root>/<uuid>`` with a ``new`` directory, and its config."""

    def __init__(self, sshd, mirror_root: Path) -> None:
        self.sshd = sshd
        self.path = sshd.root / f"zone-{uuid.uuid4().hex[:12]}"
        (self.path / "new").mkdir(parents=True)
        self.mirror_root = mirror_root
        self.cfg = {
            "host": sshd.host,
            "port": sshd.port,
            "username": sshd.username,
            "private_key": sshd.user_key_text,
            "remote_path": str(self.path),
        }

    @property
    def key(self) -> str:
        return connection_key(self.cfg["host"], self.cfg["remote_path"])

    @property
    def mirror(self) -> Path:
        return self.mirror_root / encode_key(self.key)

    def put(self, name: str, data: bytes | str = b"x", state: str = "new", mtime: int | None = None) -> Path:
        p = self.path / state / name
        p.parent.mkdir(exist_ok=True)
        p.write_bytes(data.encode() if isinstance(data, str) else data)
        if mtime is not None:
            os.utime(p, (mtime, mtime))
        return p

    def remote_tree(self) -> dict[str, bytes]:
        return _tree(self.path)

    def mirror_tree(self) -> dict[str, bytes]:
        return {k: v for k, v in _tree(self.mirror).items() if k != ".partial" and not k.startswith(".partial/")}


def _tree(root: Path) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    if not root.exists():
        return out
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        out[rel] = p.read_bytes() if p.is_file() else b"<dir>"
    return out


def call(client, method: str, path: str, cfg: dict, **kw):
    """The seed's calling convention: every endpoint takes the SFTPConfig as a JSON body (GET too)."""
    return client.request(method, path, json=cfg, **kw)
