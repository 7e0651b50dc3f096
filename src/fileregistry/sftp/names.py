"""Pure naming rules of the SFTP monitor: file names, connection keys, lifecycle names.

No I/O here, so every rule is unit-testable and runs before any I/O happens.
"""

from __future__ import annotations

import posixpath
from datetime import datetime
from typing import Final

from fileregistry.errors import BadRequest

NEW: Final = "new"
PROCESSING: Final = "processing"
COMPLETED: Final = "completed"
ERROR: Final = "error"
STATES: Final = (NEW, PROCESSING, COMPLETED, ERROR)

_FORBIDDEN_CHARS = ("/", "\\", "\x00")


def filename_problem(name: str) -> str | None:
    """Why ``name`` is not a bare file name, or None when it is one."""
    if name == "":
        return "filename is empty"
    if name in (".", ".."):
        return f"filename {name!r} is not a file name"
    for ch in _FORBIDDEN_CHARS:
        if ch in name:
            return f"filename {name!r} contains a forbidden character {ch!r} (no '/', '\\\\' or NUL allowed)"
    if len(name.encode("utf-8", "surrogatepass")) > 255:
        return "filename is longer than 255 bytes"
    return None


def validate_filename(name: str) -> str:
    """Return ``name`` if it is a bare file name; else raise a 400 naming the problem.

    ``report..csv`` is legal: only the whole names ``.`` and ``..`` are refused.
    """
    problem = filename_problem(name)
    if problem:
        raise BadRequest(f"Invalid filename: {problem}")
    return name


def connection_key(host: str, remote_path: str) -> str:
    """The seed's connection key, verbatim: ``sftp_connection_<host>_<remote_path>``."""
    return f"sftp_connection_{host}_{remote_path}"


def remote_dir(remote_path: str, state: str) -> str:
    """``<remote_path>/<state>`` on the server (posix paths; the server resolves the rest)."""
    return posixpath.join(remote_path or "/", state)


def processing_name(name: str, when: datetime, attempt: int = 0) -> str:
    """``<stem>_<YYYYmmddHHMMSS><ext>`` in UTC; ``attempt`` > 0 adds ``_<attempt>`` for collisions."""
    stem, ext = posixpath.splitext(name)
    suffix = when.strftime("%Y%m%d%H%M%S")
    if attempt:
        suffix += f"_{attempt}"
    return f"{stem}_{suffix}{ext}"
