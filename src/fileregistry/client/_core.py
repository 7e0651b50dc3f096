"""What the sync and async clients share: request descriptions, upload bodies, token state.

Every endpoint is described once (``_endpoints.py``) as a :class:`Call`: method, path, query, body
and a ``parse`` function from the ``httpx.Response`` to the result. ``Client`` and ``AsyncClient``
only send calls, each with its own I/O; everything else (request building, token refresh
decisions, parsing, errors) is here and in ``errors.py``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

import httpx

from fileregistry.auth.schemas import AccessTokenInfo
from fileregistry.client.errors import FileRegistryError

T = TypeVar("T")

DEFAULT_TIMEOUT = 60.0
# Scans, uploads and exports may run for a long time (the server's own scan limit is 3600 s).
DEFAULT_LONG_TIMEOUT = 3900.0
TOKEN_PATH = "/integration/v1/createAPIAccessToken/"
_CHUNK = 256 * 1024


@dataclass
class Call(Generic[T]):
    """One HTTP request to the server and how to read its answer."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    params: dict[str, Any] | None = None
    json: Any = None
    body: Body | None = None
    headers: dict[str, str] = field(default_factory=dict)
    authenticated: bool = True
    long: bool = False  # use the client's long timeout (scan, upload, export)

    @property
    def replayable(self) -> bool:
        return self.body is None or self.body.replayable


class Body:
    """A request body sent in chunks: bytes, a file (read anew for each attempt) or an iterable.

    Iterators and generators (of dicts, str or bytes lines) can be sent once only, so a request
    carrying one is never retried; bytes, paths, lists and tuples are.
    """

    def __init__(self, data: bytes | str | os.PathLike[str] | Iterable[Any] | AsyncIterable[Any]) -> None:
        self._data = data
        self.length: int | None = None
        self.replayable = True
        if isinstance(data, str):
            self._data = data.encode("utf-8")
        if isinstance(self._data, (bytes, bytearray, memoryview)):
            self._data = bytes(self._data)
            self.length = len(self._data)
        elif isinstance(data, os.PathLike):
            self.length = Path(data).stat().st_size
        elif isinstance(data, (list, tuple)):
            pass  # a list of lines can be streamed again
        elif isinstance(data, Mapping):
            raise TypeError("an upload body is many lines: pass a list (or iterable) of dicts, not one dict")
        else:
            self.replayable = False
            self._used = False

    @property
    def is_bytes(self) -> bool:
        return isinstance(self._data, bytes)

    def content(self) -> bytes:
        assert isinstance(self._data, bytes)
        return self._data

    def _claim(self) -> None:
        if not self.replayable:
            if self._used:
                raise RuntimeError("an iterable upload body can be sent once only")
            self._used = True

    def _stream(self) -> Iterator[bytes]:
        data = self._data
        if isinstance(data, bytes):
            return iter((data,))
        if isinstance(data, os.PathLike):
            return _read_file(Path(data))
        if isinstance(data, AsyncIterable):
            raise TypeError("an async iterable upload body needs AsyncClient")
        return _batched(_lines(data))  # type: ignore[arg-type]

    def sync_stream(self) -> Iterator[bytes]:
        self._claim()
        return self._stream()

    def async_stream(self) -> AsyncIterator[bytes]:
        self._claim()
        if isinstance(self._data, AsyncIterable):
            return _abatched(_alines(self._data))
        return _aiter(self._stream())


def _read_file(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            yield chunk


def encode_line(item: Any) -> bytes:
    """One JSON Lines line: dicts are serialised; str and bytes are taken as one line each."""
    if isinstance(item, bytes):
        line = item
    elif isinstance(item, str):
        line = item.encode("utf-8")
    elif isinstance(item, dict):
        line = json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    elif hasattr(item, "model_dump"):  # a pydantic model
        line = json.dumps(item.model_dump(mode="json"), ensure_ascii=False).encode("utf-8")
    else:
        raise TypeError(f"cannot upload a {type(item).__name__} as a JSON Lines line (dict, str or bytes)")
    return line if line.endswith(b"\n") else line + b"\n"


def _lines(items: Iterable[Any]) -> Iterator[bytes]:
    for item in items:
        yield encode_line(item)


def _batched(lines: Iterator[bytes]) -> Iterator[bytes]:
    buf: list[bytes] = []
    size = 0
    for line in lines:
        buf.append(line)
        size += len(line)
        if size >= _CHUNK:
            yield b"".join(buf)
            buf, size = [], 0
    if buf:
        yield b"".join(buf)


async def _alines(items: AsyncIterable[Any]) -> AsyncIterator[bytes]:
    async for item in items:
        yield encode_line(item)


async def _abatched(lines: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    buf: list[bytes] = []
    size = 0
    async for line in lines:
        buf.append(line)
        size += len(line)
        if size >= _CHUNK:
            yield b"".join(buf)
            buf, size = [], 0
    if buf:
        yield b"".join(buf)


async def _aiter(it: Iterator[bytes]) -> AsyncIterator[bytes]:
    for chunk in it:
        yield chunk


# --------------------------------------------------------------------------- tokens


def _parse_ts(value: str) -> datetime:
    return datetime.fromisoformat(value)  # 3.11+: accepts the trailing Z


class TokenState:
    """The access token in use, its expiry, and whether (and when) it must be refreshed.

    Expiry is tracked on the local monotonic clock: lifetime = the server's ``token_expires_at -
    created_at``, counted from when the exchange was sent, so clock skew between hosts does not
    matter. A token is refreshed once less than ``min(5 min, 10 % of its lifetime)`` remains.
    """

    MARGIN_SECONDS = 300.0
    MARGIN_FRACTION = 0.1

    def __init__(self, *, access_token: str | None, refresh_token: str | None, user_id: int | str | None) -> None:
        if refresh_token is not None and user_id is None:
            raise ValueError("a refresh_token needs its user_id")
        self.access_token = access_token
        self._refresh_token = refresh_token
        self.user_id = int(user_id) if user_id is not None else None
        self._refresh_at: float | None = None  # monotonic time at which to refresh; None: unknown expiry
        self.expires_at: datetime | None = None  # server time, for display
        self.refreshes = 0

    @property
    def can_refresh(self) -> bool:
        return self._refresh_token is not None

    def needs_refresh(self, stale: str | None = None) -> bool:
        """True when a new token must be fetched before sending (``stale``: a token just refused)."""
        if not self.can_refresh:
            return False
        if self.access_token is None or (stale is not None and self.access_token == stale):
            return True
        return self._refresh_at is not None and time.monotonic() >= self._refresh_at

    def exchange_call(self) -> Call[AccessTokenInfo]:
        sent = time.monotonic()

        def parse(resp: httpx.Response) -> AccessTokenInfo:
            info = AccessTokenInfo.model_validate(resp.json())
            self.apply(info, sent)
            return info

        return Call("POST", TOKEN_PATH, parse, json={"refresh_token": self._refresh_token, "user_id": self.user_id},
                    authenticated=False)

    def apply(self, info: AccessTokenInfo, sent: float) -> None:
        lifetime = (_parse_ts(info.token_expires_at) - _parse_ts(info.created_at)).total_seconds()
        margin = min(self.MARGIN_SECONDS, self.MARGIN_FRACTION * lifetime)
        self.access_token = info.api_access_token
        self.expires_at = _parse_ts(info.token_expires_at)
        self._refresh_at = sent + lifetime - margin
        self.refreshes += 1

    def refresh_credentials(self) -> tuple[str | None, int | None]:
        return self._refresh_token, self.user_id


# --------------------------------------------------------------------------- requests


def build_request(http: httpx.Client | httpx.AsyncClient, call: Call[Any], token: str | None,
                  timeout: float | httpx.Timeout, stream: Any = None) -> httpx.Request:
    headers = dict(call.headers)
    if call.authenticated and token is not None:
        headers["TOKEN"] = token
    kwargs: dict[str, Any] = {"params": call.params, "headers": headers, "timeout": timeout}
    if call.json is not None:
        kwargs["json"] = call.json
    elif call.body is not None:
        kwargs["content"] = call.body.content() if call.body.is_bytes else stream
        if call.body.length is not None and not call.body.is_bytes:
            headers["Content-Length"] = str(call.body.length)
    return http.build_request(call.method, call.path, **kwargs)


def env_settings() -> dict[str, Any]:
    """Constructor arguments from FILEREGISTRY_URL, FILEREGISTRY_TOKEN, FILEREGISTRY_REFRESH_TOKEN,
    FILEREGISTRY_USER_ID."""
    url = os.environ.get("FILEREGISTRY_URL")
    if not url:
        raise FileRegistryError(None, "FILEREGISTRY_URL is not set (the server's base URL)")
    access = os.environ.get("FILEREGISTRY_TOKEN") or None
    refresh = os.environ.get("FILEREGISTRY_REFRESH_TOKEN") or None
    user_id = os.environ.get("FILEREGISTRY_USER_ID") or None
    if refresh and not user_id:
        raise FileRegistryError(None, "FILEREGISTRY_REFRESH_TOKEN needs FILEREGISTRY_USER_ID")
    if not access and not refresh:
        raise FileRegistryError(None, "set FILEREGISTRY_TOKEN (an API access token) or FILEREGISTRY_REFRESH_TOKEN "
                                      "and FILEREGISTRY_USER_ID")
    return {"base_url": url, "access_token": access, "refresh_token": refresh, "user_id": user_id}


def timeouts(timeout: float | httpx.Timeout | None, long_timeout: float | None) -> tuple[httpx.Timeout, httpx.Timeout]:
    normal = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
    connect = normal.connect
    long = httpx.Timeout(long_timeout, connect=connect)
    return normal, long


def describe(cls_name: str, base_url: Any, tokens: TokenState) -> str:
    # Never a token: only where and as whom.
    auth = "refresh token" if tokens.can_refresh else ("access token" if tokens.access_token else "no token")
    return f"<{cls_name} {str(base_url)!r} user_id={tokens.user_id} auth={auth}>"


def need(value: Any, what: str) -> Any:
    if value is None:
        raise FileRegistryError(None, f"{what} is required (this client has none)")
    return value
