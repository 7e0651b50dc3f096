"""Parse and validate one upload line. Pure: no I/O, no database.

This is the hot loop of a bulk upload (millions of lines), so it is a hand-written validator
over ``orjson.loads``. A pydantic model per line measured several times slower at this volume
(the whole 1M-line budget is 10 s, and orjson + this validator already take ~2 s), so the rules
of the seed's table are spelled out here instead.

A valid line becomes a *row* tuple in :data:`ROW_FIELDS` order, the column order of the staging
table. ``parent_path`` is normalised: components joined by the delimiter, no leading or trailing
delimiter, ``""`` for the root.
"""

from __future__ import annotations

from datetime import UTC, datetime
from time import gmtime as _gmtime
from typing import Any

import orjson

ROW_FIELDS = (
    "line", "parent_path", "name", "is_directory", "implied", "size_in_bytes", "ts_last_modified",
    "ts_last_accessed", "owner", "group_name", "permission_bits", "storage_type",
)
KNOWN_KEYS = frozenset({
    "path", "name", "is_directory", "size_in_bytes", "ts_last_modified", "ts_last_accessed",
    "owner", "group", "permission_bits", "storage_type",
})
TS_FORMAT = "%Y-%m-%d %H:%M:%S"
_CACHE_MAX = 1 << 17
_EPOCH = datetime(1970, 1, 1)
_EPOCH_UTC = datetime(1970, 1, 1, tzinfo=UTC)
fromiso = datetime.fromisoformat
# Integers stored in BIGINT columns (size_in_bytes; timestamps as epoch seconds) must fit in it:
# orjson returns ints up to 2**64 - 1, which would fail the whole load instead of one line.
BIGINT_MAX = 2**63 - 1
# Path and name of one entry together, in UTF-8 bytes. Both are the file system's unique key: an
# index entry on PostgreSQL holds at most ~2.7 kB, and a longer key fails the whole job there, so
# every database gets the same rule (S3 keys are at most 1,024 bytes, Linux paths 4,096).
MAX_KEY_BYTES = 2000
# Stored timestamps are UTC seconds within years 1..9999, so that every stored value exports as
# a valid 'YYYY-mm-dd HH:MM:SS' (an offset can push a valid local time out of that range).
TS_MIN = -62135596800  # 0001-01-01 00:00:00 UTC
TS_MAX = 253402300799  # 9999-12-31 23:59:59 UTC


def _fast_epoch(value: Any) -> int | None:
    """UTC epoch seconds of a well-formed, in-range timestamp string, or None (then the caller
    takes the slower path that also reports what is wrong). ``fromisoformat`` minus the epoch is
    ~4x faster than ``.replace(tzinfo=UTC).timestamp()``, and this runs twice per line."""
    if type(value) is str and len(value) >= 16 and value[10] in " T":
        try:
            dt = fromiso(value)
        except ValueError:
            return None
        td = dt - (_EPOCH if dt.tzinfo is None else _EPOCH_UTC)
        secs = td.days * 86400 + td.seconds
        return secs if TS_MIN <= secs <= TS_MAX else None
    return None


def shorten(value: str, limit: int = 80) -> str:
    """A user value for an error message, cut short (a line may be up to 1 MiB)."""
    return repr(value) if len(value) <= limit else repr(value[:limit]) + f"... ({len(value)} characters)"


class LineError(Exception):
    """One invalid line: which field, a stable code and a human message."""

    def __init__(self, field: str | None, code: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.code = code
        self.message = message


class LineParser:
    """Validates lines for one file system (its delimiter); caches repeated paths and timestamps."""

    def __init__(self, delimiter: str = "/") -> None:
        if len(delimiter) != 1:
            raise ValueError("the delimiter must be one character")
        self.delimiter = delimiter
        self._paths: dict[str, str] = {}

    # ------------------------------------------------------------------ fields

    def path(self, value: Any) -> str:
        cached = self._paths.get(value) if type(value) is str else None
        if cached is not None:
            return cached
        if type(value) is not str:
            raise LineError("path", "invalid_type", "path must be a string")
        d = self.delimiter
        norm = value.strip(d)
        if d + d in norm:
            raise LineError("path", "invalid_path", f"path {shorten(value)} has an empty component")
        if "\x00" in norm:
            raise LineError("path", "invalid_value", "path contains a NUL character")
        if len(self._paths) >= _CACHE_MAX:
            self._paths.clear()
        self._paths[value] = norm
        return norm

    def name(self, value: Any) -> str:
        if type(value) is not str:
            raise LineError("name", "invalid_type", "name must be a string")
        if not value:
            raise LineError("name", "invalid_name", "name must not be empty")
        if self.delimiter in value:
            raise LineError("name", "invalid_name",
                            f"name {shorten(value)} contains the delimiter {self.delimiter!r}")
        if "\x00" in value:
            raise LineError("name", "invalid_value", "name contains a NUL character")
        return value

    def timestamp(self, field: str, value: Any) -> int:
        if type(value) is not str:
            raise LineError(field, "invalid_type", f"{field} must be a string 'YYYY-mm-dd HH:MM:SS'")
        return parse_timestamp(field, value)

    # ------------------------------------------------------------------ a line

    def parse(self, raw: bytes, lineno: int, warnings: list[LineError] | None = None) -> tuple:
        """Validate one non-blank line; return its row tuple or raise :class:`LineError`."""
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as uexc:
                raise LineError(None, "invalid_utf8",
                                f"line is not valid UTF-8 (byte {uexc.start + 1})") from None
            raise LineError(None, "invalid_json", f"line is not valid JSON: {exc}") from None
        if type(obj) is not dict:
            raise LineError(None, "not_an_object", "line must be one JSON object")
        get = obj.get
        delim = self.delimiter

        path = get("path")
        parent = self._paths.get(path) if type(path) is str else None
        if parent is None:
            if path is None:
                raise LineError("path", "missing_field", "path is required")
            parent = self.path(path)
        name = get("name")
        if type(name) is not str or not name or delim in name or "\x00" in name:
            if name is None:
                raise LineError("name", "missing_field", "name is required")
            self.name(name)  # raises with the precise reason
        if len(raw) > MAX_KEY_BYTES:  # the raw line bounds the UTF-8 size of its strings: cheap test first
            key_bytes = len(parent.encode()) + len(name.encode())
            if key_bytes > MAX_KEY_BYTES:
                raise LineError("path", "path_too_long", f"path and name together are {key_bytes} bytes in "
                                f"UTF-8; at most {MAX_KEY_BYTES} are allowed")
        is_dir = get("is_directory")
        if type(is_dir) is not bool:
            if is_dir is None:
                raise LineError("is_directory", "missing_field", "is_directory is required")
            raise LineError("is_directory", "invalid_type", "is_directory must be true or false")

        size = get("size_in_bytes")
        if size is not None and (type(size) is not int or not 0 <= size <= BIGINT_MAX):
            raise LineError("size_in_bytes", "invalid_value",
                            f"size_in_bytes must be an integer from 0 to {BIGINT_MAX}")
        mtime = get("ts_last_modified")
        if mtime is not None:
            mtime = _fast_epoch(raw := mtime)
            if mtime is None:
                mtime = self.timestamp("ts_last_modified", raw)
        atime = get("ts_last_accessed")
        if atime is not None:
            atime = _fast_epoch(raw := atime)
            if atime is None:
                atime = self.timestamp("ts_last_accessed", raw)
        owner = get("owner")
        if owner is not None and (type(owner) is not str or "\x00" in owner):
            raise LineError("owner", "invalid_type", "owner must be a string")
        group = get("group")
        if group is not None and (type(group) is not str or "\x00" in group):
            raise LineError("group", "invalid_type", "group must be a string")
        perm = get("permission_bits")
        if perm is not None and (type(perm) is not int or perm not in _OCTAL3):
            raise LineError("permission_bits", "invalid_value",
                            "permission_bits must be an integer of at most three octal digits, e.g. 755")
        storage = get("storage_type")
        if storage is not None and (type(storage) is not int or not 0 <= storage <= 3):
            raise LineError("storage_type", "invalid_value", "storage_type must be 0, 1, 2 or 3")

        if len(obj) > 3 and warnings is not None and not KNOWN_KEYS.issuperset(obj):
            unknown = sorted(k for k in obj if k not in KNOWN_KEYS)
            warnings.append(LineError(unknown[0], "unknown_field",
                                      f"unknown field(s) ignored: {', '.join(unknown)}"))
        return (lineno, parent, name, is_dir, False, size, mtime, atime, owner, group, perm, storage)


_OCTAL3 = frozenset(int(oct(i)[2:]) for i in range(0o1000))  # 0..777 with octal digits only


def parse_timestamp(field: str, value: str) -> int:
    """``YYYY-mm-dd HH:MM:SS`` (UTC) or ISO-8601 with ``T``, fractions, ``Z`` or an offset -> UTC secs
    (fractions are floored)."""
    if len(value) < 16 or value[10] not in " T":
        raise LineError(field, "invalid_timestamp",
                        f"{field} {shorten(value)} is not 'YYYY-mm-dd HH:MM:SS' or ISO-8601")
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise LineError(field, "invalid_timestamp",
                        f"{field} {shorten(value)} is not 'YYYY-mm-dd HH:MM:SS' or ISO-8601") from None
    td = dt - (_EPOCH if dt.tzinfo is None else _EPOCH_UTC)
    secs = td.days * 86400 + td.seconds
    if not TS_MIN <= secs <= TS_MAX:
        raise LineError(field, "invalid_timestamp",
                        f"{field} {shorten(value)} is outside 0001-01-01 00:00:00 .. 9999-12-31 23:59:59"
                        " in UTC")
    return secs


def format_timestamp(secs: int | None) -> str | None:
    if secs is None:
        return None
    t = _gmtime(secs)
    return f"{t[0]:04d}-{t[1]:02d}-{t[2]:02d} {t[3]:02d}:{t[4]:02d}:{t[5]:02d}"


def join_path(delimiter: str, parent: str, name: str) -> str:
    """Normalised full path of an entry (no leading delimiter)."""
    return f"{parent}{delimiter}{name}" if parent else name


def split_path(delimiter: str, path: str) -> tuple[str, str]:
    """A user-given path -> ``(parent_path, name)``; ``("", "")`` for the root."""
    norm = path.strip(delimiter)
    if not norm:
        return "", ""
    parent, _, name = norm.rpartition(delimiter)
    return parent, name


def to_export_line(delimiter: str, row: tuple) -> bytes:
    """One entry (``parent_path, name, is_directory, size, mtime, atime, owner, group, perm, storage``)
    as an upload line."""
    parent, name, is_dir, size, mtime, atime, owner, group, perm, storage = row
    obj: dict[str, Any] = {"path": delimiter + parent, "name": name, "is_directory": bool(is_dir)}
    if size is not None:
        obj["size_in_bytes"] = size
    if mtime is not None:
        obj["ts_last_modified"] = format_timestamp(mtime)
    if atime is not None:
        obj["ts_last_accessed"] = format_timestamp(atime)
    if owner is not None:
        obj["owner"] = owner
    if group is not None:
        obj["group"] = group
    if perm is not None:
        obj["permission_bits"] = perm
    if storage is not None:
        obj["storage_type"] = storage
    return orjson.dumps(obj) + b"\n"
