"""The asyncio client: the same methods as :class:`~fileregistry.client.Client`, awaitable."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Self, TypeVar

import httpx

from fileregistry import __version__
from fileregistry.auth.schemas import AccessTokenInfo, RefreshTokenInfo, UserInfo, UserOut
from fileregistry.client import _endpoints as ep
from fileregistry.client._core import (
    DEFAULT_LONG_TIMEOUT,
    DEFAULT_TIMEOUT,
    Call,
    TokenState,
    build_request,
    describe,
    env_settings,
    timeouts,
)
from fileregistry.client._core import need as _need
from fileregistry.client._endpoints import ConfigLike, UploadData
from fileregistry.client.errors import JobFailed, JobTimeout, error_for, transport_error
from fileregistry.sftp.schemas import (
    ConnectionKeyResponse,
    MarkFinishedResponse,
    MarkProcessingResponse,
    MessageResponse,
    NewFilesResponse,
    ScanResult,
    StatusResponse,
)
from fileregistry.vfs.schemas import (
    ChildrenPage,
    EntryOut,
    FileSystemOut,
    JobErrorOut,
    JobStatus,
    UploadAccepted,
)

if TYPE_CHECKING:
    from fileregistry.sources.schemas import SourceView

T = TypeVar("T")


class AsyncClient:
    """A fileregistry API client for asyncio; see :class:`~fileregistry.client.Client` and docs/client.md.

    Concurrent calls share one token refresh (an ``asyncio.Lock``). Use ``async with``, or ``await
    client.aclose()``.
    """

    def __init__(
        self,
        base_url: str,
        *,
        refresh_token: str | None = None,
        user_id: int | str | None = None,
        access_token: str | None = None,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        long_timeout: float | None = DEFAULT_LONG_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._tokens = TokenState(access_token=access_token, refresh_token=refresh_token, user_id=user_id)
        self._timeout, self._long_timeout = timeouts(timeout, long_timeout)
        self._http = httpx.AsyncClient(base_url=base_url, timeout=self._timeout, transport=transport,
                                       headers={"User-Agent": f"fileregistry-client/{__version__}"})
        self._lock = asyncio.Lock()

    @classmethod
    def from_env(cls, **kwargs: Any) -> AsyncClient:
        """From FILEREGISTRY_URL and FILEREGISTRY_TOKEN, or FILEREGISTRY_REFRESH_TOKEN + FILEREGISTRY_USER_ID."""
        return cls(**{**env_settings(), **kwargs})

    def __repr__(self) -> str:
        return describe(type(self).__name__, self._http.base_url, self._tokens)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # ------------------------------------------------------------------ transport

    async def _token(self, stale: str | None = None) -> str | None:
        if self._tokens.needs_refresh(stale):
            async with self._lock:
                if self._tokens.needs_refresh(stale):
                    call = self._tokens.exchange_call()
                    call.parse(await self._checked(await self._send_once(call, None)))
        return self._tokens.access_token

    async def _send_once(self, call: Call[Any], token: str | None, stream: bool = False) -> httpx.Response:
        timeout = self._long_timeout if call.long else self._timeout
        content = call.body.async_stream() if call.body is not None and not call.body.is_bytes else None
        request = build_request(self._http, call, token, timeout, content)
        try:
            return await self._http.send(request, stream=stream)
        except httpx.TransportError as exc:
            error = transport_error(exc, call.method, call.path)
        raise error  # outside the except block: no chained httpx exception (its request holds the token)

    @staticmethod
    async def _checked(response: httpx.Response) -> httpx.Response:
        if not response.is_success:
            await response.aread()
            await response.aclose()
            raise error_for(response)
        return response

    async def _send(self, call: Call[Any], stream: bool = False) -> httpx.Response:
        token = await self._token() if call.authenticated else None
        response = await self._send_once(call, token, stream)
        if response.status_code == 401 and call.authenticated and self._tokens.can_refresh:
            if call.replayable:
                await response.aclose()
                response = await self._send_once(call, await self._token(stale=token), stream)
            else:  # an iterator body cannot be sent again: refresh for the next call, raise this 401
                await self._token(stale=token)
        return await self._checked(response)

    async def _call(self, call: Call[T]) -> T:
        return call.parse(await self._send(call))

    # ------------------------------------------------------------------ health and tokens

    async def healthz(self) -> dict[str, Any]:
        return await self._call(ep.healthz())

    async def readyz(self) -> dict[str, Any]:
        """``{"status": "ready"}``; a server that is not ready raises ServerError (503) naming the problem."""
        return await self._call(ep.readyz())

    async def metrics(self) -> str:
        """The Prometheus text exposition of ``/metrics``."""
        return await self._call(ep.metrics())

    async def create_access_token(self, refresh_token: str | None = None,
                                  user_id: int | str | None = None) -> AccessTokenInfo:
        own_token, own_user = self._tokens.refresh_credentials()
        return await self._call(ep.create_access_token(_need(refresh_token or own_token, "refresh_token"),
                                                       _need(user_id or own_user, "user_id")))

    async def validate_refresh_token(self, refresh_token: str | None = None,
                                     user_id: int | str | None = None) -> RefreshTokenInfo:
        own_token, own_user = self._tokens.refresh_credentials()
        return await self._call(ep.validate_refresh_token(_need(refresh_token or own_token, "refresh_token"),
                                                          _need(user_id or own_user, "user_id")))

    async def validate_access_token(self, access_token: str | None = None,
                                    user_id: int | str | None = None) -> AccessTokenInfo:
        token = access_token or await self._token()
        return await self._call(ep.validate_access_token(_need(token, "access_token"),
                                                         _need(user_id or self._tokens.user_id, "user_id")))

    async def userinfo(self) -> UserInfo:
        return await self._call(ep.userinfo())

    async def list_users(self) -> list[UserOut]:
        return await self._call(ep.list_users())

    # ------------------------------------------------------------------ sftp (source= or config=)

    async def connection_key(self, *, source: str | None = None,
                             config: ConfigLike | None = None) -> ConnectionKeyResponse:
        return await self._call(ep.connection_key(source, config))

    async def scan(self, *, source: str | None = None, config: ConfigLike | None = None) -> ScanResult:
        return await self._call(ep.scan(source, config))

    async def status(self, *, source: str | None = None, config: ConfigLike | None = None) -> StatusResponse:
        return await self._call(ep.status(source, config))

    async def new_files(self, *, source: str | None = None, config: ConfigLike | None = None) -> NewFilesResponse:
        return await self._call(ep.new_files(source, config))

    async def mark_processing(self, filename: str, *, source: str | None = None,
                              config: ConfigLike | None = None) -> MarkProcessingResponse:
        return await self._call(ep.mark_processing(filename, source, config))

    async def download_file(self, filename: str, state: str, dest: str | os.PathLike[str] | IO[bytes], *,
                      source: str | None = None, config: ConfigLike | None = None) -> int:
        """Write the server's mirror copy of ``<state>/<filename>`` to a path (via a temp file renamed
        into place) or a binary file; returns the byte count. For workers that do not share the
        server's disk."""
        if isinstance(dest, (str, os.PathLike)):
            final = Path(dest)
            tmp = final.with_name(f".{final.name}.part")
            try:
                with tmp.open("wb") as f:  # noqa: ASYNC230 - a local file, written chunk by chunk
                    n = await self.download_file(filename, state, f, source=source, config=config)
                tmp.replace(final)
                return n
            finally:
                tmp.unlink(missing_ok=True)
        written = 0
        async for chunk in self._stream(ep.download_file(filename, state, source, config), lines=False):
            dest.write(chunk)
            written += len(chunk)
        return written

    async def mark_completed(self, filename: str, *, source: str | None = None,
                             config: ConfigLike | None = None) -> MarkFinishedResponse:
        return await self._call(ep.mark_completed(filename, source, config))

    async def mark_error(self, filename: str, *, source: str | None = None,
                         config: ConfigLike | None = None) -> MarkFinishedResponse:
        return await self._call(ep.mark_error(filename, source, config))

    async def clear_registry(self, *, source: str | None = None, config: ConfigLike | None = None) -> MessageResponse:
        return await self._call(ep.clear_registry(source, config))

    # ------------------------------------------------------------------ stored sources

    async def list_sources(self, category: str | None = None, include_secrets: bool = False) -> list[SourceView]:
        return await self._call(ep.list_sources(category, include_secrets))

    async def get_source(self, name: str, include_secrets: bool = False) -> SourceView:
        return await self._call(ep.get_source(name, include_secrets))

    async def put_source(self, name: str, config: ConfigLike,
                         scan_interval_seconds: int | None = None) -> SourceView:
        return await self._call(ep.put_source(name, config, scan_interval_seconds))

    async def delete_source(self, name: str) -> MessageResponse:
        return await self._call(ep.delete_source(name))

    # ------------------------------------------------------------------ virtual file systems

    async def create_filesystem(self, name: str, delimiter: str = "/") -> FileSystemOut:
        return await self._call(ep.create_filesystem(name, delimiter))

    async def list_filesystems(self) -> list[FileSystemOut]:
        return await self._call(ep.list_filesystems())

    async def get_filesystem(self, fs_id: int) -> FileSystemOut:
        return await self._call(ep.get_filesystem(fs_id))

    async def delete_filesystem(self, fs_id: int) -> None:
        return await self._call(ep.delete_filesystem(fs_id))

    async def upload(self, fs_id: int, data: UploadData, *, dry_run: bool = False, on_error: str = "fail",
                     gzip: bool | None = None) -> UploadAccepted:
        """Replace the tree of ``fs_id`` (bytes, a path, or a sync or async iterable of dicts/lines)."""
        return await self._call(ep.upload(fs_id, data, dry_run=dry_run, on_error=on_error, gzip=gzip))

    async def job_status(self, job_id: int) -> JobStatus:
        return await self._call(ep.job_status(job_id))

    async def job_errors(self, job_id: int, *, limit: int = 100, cursor: int = 0) -> list[JobErrorOut]:
        return (await self._call(ep.job_errors_page(job_id, limit, cursor)))[0]

    async def iter_job_errors(self, job_id: int, *, page_size: int = 1000) -> AsyncIterator[JobErrorOut]:
        cursor: int | None = 0
        while cursor is not None:
            items, cursor = await self._call(ep.job_errors_page(job_id, page_size, cursor))
            for item in items:
                yield item

    async def wait_for_job(self, job_id: int, *, poll: float = 1.0, timeout: float | None = None,
                           raise_on_failure: bool = False) -> JobStatus:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = await self.job_status(job_id)
            if job.status in ep.JOB_DONE:
                if raise_on_failure and job.status == "failed":
                    raise JobFailed(job)
                return job
            if deadline is not None and time.monotonic() + poll > deadline:
                raise JobTimeout(job, timeout or 0)
            await asyncio.sleep(poll)

    async def children(self, fs_id: int, path: str = "/", *, limit: int = 100,
                       cursor: str | None = None) -> ChildrenPage:
        return await self._call(ep.children(fs_id, path, limit, cursor))

    async def iter_children(self, fs_id: int, path: str = "/", *, page_size: int = 1000) -> AsyncIterator[EntryOut]:
        cursor: str | None = None
        while True:
            page = await self.children(fs_id, path, limit=page_size, cursor=cursor)
            for item in page.items:
                yield item
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    async def entry(self, fs_id: int, path: str) -> EntryOut:
        return await self._call(ep.entry(fs_id, path))

    async def iter_export(self, fs_id: int) -> AsyncIterator[dict[str, Any]]:
        async for line in self._export_chunks(fs_id, lines=True):
            if line.strip():
                yield json.loads(line)

    async def export(self, fs_id: int, dest: str | os.PathLike[str] | IO[bytes]) -> int:
        if isinstance(dest, (str, os.PathLike)):
            with Path(dest).open("wb") as f:  # noqa: ASYNC230 - a local file, written chunk by chunk
                return await self.export(fs_id, f)
        written = 0
        async for chunk in self._export_chunks(fs_id, lines=False):
            dest.write(chunk)
            written += len(chunk)
        return written

    async def _export_chunks(self, fs_id: int, *, lines: bool) -> AsyncIterator[Any]:
        async for chunk in self._stream(ep.export(fs_id), lines=lines):
            yield chunk

    async def _stream(self, call: Call[Any], *, lines: bool) -> AsyncIterator[Any]:
        response = await self._send(call, stream=True)
        error = None
        try:
            async for chunk in (response.aiter_lines() if lines else response.aiter_bytes()):
                yield chunk
        except httpx.TransportError as exc:
            error = transport_error(exc, call.method, call.path)
        finally:
            await response.aclose()
        if error is not None:
            raise error
