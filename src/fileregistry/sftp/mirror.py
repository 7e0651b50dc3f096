"""The local mirror: ``<mirror_root>/<encoded connection key>/<state>/<name>``.

The connection key embeds the user-supplied ``remote_path`` (``/../../etc`` is a legal value),
so it is never used as a path directly: it is percent-encoded into ONE path component
(``/`` becomes ``%2F``; the ``sftp_connection_`` prefix means it is never ``.`` or ``..``),
long keys are shortened with a hash, and every path is also checked to resolve inside the root.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from urllib.parse import quote

from fileregistry.errors import AppError, BadRequest
from fileregistry.sftp.names import STATES, validate_filename

_MAX_COMPONENT = 200  # below NAME_MAX (255) with room to spare


class MirrorError(AppError):
    status_code = 500
    code = "mirror_error"


def encode_key(connection_key: str) -> str:
    """A single, safe, readable and injective-enough path component for a connection key."""
    enc = quote(connection_key, safe="")  # stdlib percent-encoding: every '/', '\\', '%', NUL is encoded
    if len(enc) > _MAX_COMPONENT or enc in ("", ".", ".."):
        digest = hashlib.sha256(connection_key.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        enc = f"{enc[:_MAX_COMPONENT - 34]}~{digest}"
    return enc


class Mirror:
    """Paths and file moves of one connection's mirror."""

    def __init__(self, root: Path, connection_key: str) -> None:
        self.root = Path(root).resolve()
        self.base = self._inside(self.root / encode_key(connection_key))

    def _inside(self, path: Path) -> Path:
        # Belt and braces: the encoding already guarantees this; a symlink planted in the mirror must not
        # redirect us either.
        resolved = path.resolve()
        if resolved != self.root and self.root not in resolved.parents:
            raise BadRequest("path would leave the mirror directory")
        return resolved

    def state_dir(self, state: str) -> Path:
        if state not in STATES:
            raise ValueError(state)
        return self._inside(self.base / state)  # a state dir symlinked out of the mirror is refused

    def path(self, state: str, name: str) -> Path:
        validate_filename(name)
        return self._inside(self.state_dir(state) / name)

    def ensure_state_dir(self, state: str) -> Path:
        d = self.state_dir(state)
        d.mkdir(parents=True, exist_ok=True)
        return d

    def move(self, src_state: str, src_name: str, dst_state: str, dst_name: str) -> None:
        """Move a mirrored file; never overwrites (link + unlink fails if the target exists)."""
        src = self.path(src_state, src_name)
        dst = self.path(dst_state, dst_name)
        try:
            self.ensure_state_dir(dst_state)
            # os.link refuses to replace an existing target, unlike os.rename.
            os.link(src, dst)
            os.unlink(src)
        except OSError as exc:
            raise MirrorError(f"mirror move of {src_name!r} to {dst_state}/{dst_name!r} failed: {exc.strerror}") from exc

    def exists(self, state: str, name: str) -> bool:
        return self.path(state, name).exists()

    def remove(self, state: str, name: str) -> None:
        try:
            self.path(state, name).unlink()
        except FileNotFoundError:
            pass

    def clear(self) -> None:
        """Delete this connection's whole mirror directory."""
        if self.base.exists():
            shutil.rmtree(self.base)

    def temp_dir(self) -> Path:
        """Where downloads are written before the byte count is checked (same file system: rename is atomic).

        No state directory is named ``.partial``, so a temp file can never be taken for a mirrored file.
        """
        d = self._inside(self.base / ".partial")
        d.mkdir(parents=True, exist_ok=True)
        return d
