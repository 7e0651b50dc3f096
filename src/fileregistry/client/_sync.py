"""The synchronous client. Each method is one line over a shared endpoint description."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
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


class Client:
    """A fileregistry API client (blocking). See docs/client.md.

    ``Client(base_url, refresh_token=..., user_id=...)`` exchanges the refresh token for an API access
    token on first use and refreshes it before it expires and once after a 401.
    ``Client(base_url, access_token=...)`` uses that token as it is. Use it as a context manager, or
    call :meth:`close`.
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
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._tokens = TokenState(access_token=access_token, refresh_token=refresh_token, user_id=user_id)
        self._timeout, self._long_timeout = timeouts(timeout, long_timeout)
        self._http = httpx.Client(base_url=base_url, timeout=self._timeout, transport=transport,
                                  headers={"User-Agent": f"fileregistry-client/{__version__}"})
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls, **kwargs: Any) -> Client:
        """From FILEREGISTRY_URL and FILEREGISTRY_TOKEN, or FILEREGISTRY_REFRESH_TOKEN + FILEREGISTRY_USER_ID."""
        return cls(**{**env_settings(), **kwargs})

    def __repr__(self) -> str:
        return describe(type(self).__name__, self._http.base_url, self._tokens)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # ------------------------------------------------------------------ transport

    def _token(self, stale: str | None = None) -> str | None:
        if self._tokens.needs_refresh(stale):
            with self._lock:
                if self._tokens.needs_refresh(stale):
                    call = self._tokens.exchange_call()
                    call.parse(self._checked(self._send_once(call, None)))
        return self._tokens.access_token

    def _send_once(self, call: Call[Any], token: str | None, stream: bool = False) -> httpx.Response:
        timeout = self._long_timeout if call.long else self._timeout
        content = call.body.sync_stream() if call.body is not None and not call.body.is_bytes else None
        request = build_request(self._http, call, token, timeout, content)
        try:
            return self._http.send(request, stream=stream)
        except httpx.TransportError as exc:
            error = transport_error(exc, call.method, call.path)
        raise error  # outside the except block: no chained httpx exception (its request holds the token)

    @staticmethod
    def _checked(response: httpx.Response) -> httpx.Response:
        if not response.is_success:
            response.read()
            response.close()
            raise error_for(response)
        return response

    def _send(self, call: Call[Any], stream: bool = False) -> httpx.Response:
        token = self._token() if call.authenticated else None
        response = self._send_once(call, token, stream)
        if response.status_code == 401 and call.authenticated and self._tokens.can_refresh:
            if call.replayable:
                response.close()
                response = self._send_once(call, self._token(stale=token), stream)
            else:  # an iterator body cannot be sent again: refresh for the next call, raise this 401
                self._token(stale=token)
        return self._checked(response)

    def _call(self, call: Call[T]) -> T:
        return call.parse(self._send(call))

    # ------------------------------------------------------------------ health and tokens

    def healthz(self) -> dict[str, Any]:
        return self._call(ep.healthz())

    def readyz(self) -> dict[str, Any]:
        """``{"status": "ready"}``; a server that is not ready raises ServerError (503) naming the problem."""
        return self._call(ep.readyz())

    def metrics(self) -> str:
        """The Prometheus text exposition of ``/metrics``."""
        return self._call(ep.metrics())

    def create_access_token(self, refresh_token: str | None = None, user_id: int | str | None = None) -> AccessTokenInfo:
        """A new API access token (defaults: this client's refresh token and user id). Does not change
        the token this client uses."""
        own_token, own_user = self._tokens.refresh_credentials()
        return self._call(ep.create_access_token(_need(refresh_token or own_token, "refresh_token"),
                                                 _need(user_id or own_user, "user_id")))

    def validate_refresh_token(self, refresh_token: str | None = None,
                               user_id: int | str | None = None) -> RefreshTokenInfo:
        own_token, own_user = self._tokens.refresh_credentials()
        return self._call(ep.validate_refresh_token(_need(refresh_token or own_token, "refresh_token"),
                                                    _need(user_id or own_user, "user_id")))

    def validate_access_token(self, access_token: str | None = None,
                              user_id: int | str | None = None) -> AccessTokenInfo:
        """Status of ``access_token`` (default: the one this client uses, fetched first if need be)."""
        token = access_token or self._token()
        return self._call(ep.validate_access_token(_need(token, "access_token"),
                                                   _need(user_id or self._tokens.user_id, "user_id")))

    def userinfo(self) -> UserInfo:
        return self._call(ep.userinfo())

    def list_users(self) -> list[UserOut]:
        return self._call(ep.list_users())

    # ------------------------------------------------------------------ sftp (source= or config=)

    def connection_key(self, *, source: str | None = None, config: ConfigLike | None = None) -> ConnectionKeyResponse:
        return self._call(ep.connection_key(source, config))

    def scan(self, *, source: str | None = None, config: ConfigLike | None = None) -> ScanResult:
        return self._call(ep.scan(source, config))

    def status(self, *, source: str | None = None, config: ConfigLike | None = None) -> StatusResponse:
        return self._call(ep.status(source, config))

    def new_files(self, *, source: str | None = None, config: ConfigLike | None = None) -> NewFilesResponse:
        return self._call(ep.new_files(source, config))

    def mark_processing(self, filename: str, *, source: str | None = None,
                        config: ConfigLike | None = None) -> MarkProcessingResponse:
        return self._call(ep.mark_processing(filename, source, config))

    def download_file(self, filename: str, state: str, dest: str | os.PathLike[str] | IO[bytes], *,
                      source: str | None = None, config: ConfigLike | None = None) -> int:
        """Write the server's mirror copy of ``<state>/<filename>`` to a path (via a temp file renamed
        into place) or a binary file; returns the byte count. For workers that do not share the
        server's disk."""
        if isinstance(dest, (str, os.PathLike)):
            final = Path(dest)
            tmp = final.with_name(f".{final.name}.part")
            try:
                with tmp.open("wb") as f:
                    n = self.download_file(filename, state, f, source=source, config=config)
                tmp.replace(final)
                return n
            finally:
                tmp.unlink(missing_ok=True)
        written = 0
        for chunk in self._stream(ep.download_file(filename, state, source, config), lines=False):
            dest.write(chunk)
            written += len(chunk)
        return written

    def mark_completed(self, filename: str, *, source: str | None = None,
                       config: ConfigLike | None = None) -> MarkFinishedResponse:
        return self._call(ep.mark_completed(filename, source, config))

    def mark_error(self, filename: str, *, source: str | None = None,
                   config: ConfigLike | None = None) -> MarkFinishedResponse:
        return self._call(ep.mark_error(filename, source, config))

    def clear_registry(self, *, source: str | None = None, config: ConfigLike | None = None) -> MessageResponse:
        return self._call(ep.clear_registry(source, config))

    # ------------------------------------------------------------------ stored sources

    def list_sources(self, category: str | None = None, include_secrets: bool = False) -> list[SourceView]:
        return self._call(ep.list_sources(category, include_secrets))

    def get_source(self, name: str, include_secrets: bool = False) -> SourceView:
        return self._call(ep.get_source(name, include_secrets))

    def put_source(self, name: str, config: ConfigLike, scan_interval_seconds: int | None = None) -> SourceView:
        return self._call(ep.put_source(name, config, scan_interval_seconds))

    def delete_source(self, name: str) -> MessageResponse:
        return self._call(ep.delete_source(name))

    # ------------------------------------------------------------------ virtual file systems

    def create_filesystem(self, name: str, delimiter: str = "/") -> FileSystemOut:
        return self._call(ep.create_filesystem(name, delimiter))

    def list_filesystems(self) -> list[FileSystemOut]:
        return self._call(ep.list_filesystems())

    def get_filesystem(self, fs_id: int) -> FileSystemOut:
        return self._call(ep.get_filesystem(fs_id))

    def delete_filesystem(self, fs_id: int) -> None:
        return self._call(ep.delete_filesystem(fs_id))

    def upload(self, fs_id: int, data: UploadData, *, dry_run: bool = False, on_error: str = "fail",
               gzip: bool | None = None) -> UploadAccepted:
        """Replace the tree of ``fs_id`` (JSON Lines: bytes, a path, or an iterable of dicts/lines)."""
        return self._call(ep.upload(fs_id, data, dry_run=dry_run, on_error=on_error, gzip=gzip))

    def job_status(self, job_id: int) -> JobStatus:
        return self._call(ep.job_status(job_id))

    def job_errors(self, job_id: int, *, limit: int = 100, cursor: int = 0) -> list[JobErrorOut]:
        """One page of a job's errors and warnings (``cursor``: id of the last one already seen)."""
        return self._call(ep.job_errors_page(job_id, limit, cursor))[0]

    def iter_job_errors(self, job_id: int, *, page_size: int = 1000) -> Iterator[JobErrorOut]:
        cursor: int | None = 0
        while cursor is not None:
            items, cursor = self._call(ep.job_errors_page(job_id, page_size, cursor))
            yield from items

    def wait_for_job(self, job_id: int, *, poll: float = 1.0, timeout: float | None = None,
                     raise_on_failure: bool = False) -> JobStatus:
        """Poll until the job is ``successful`` or ``failed``; JobTimeout after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.job_status(job_id)
            if job.status in ep.JOB_DONE:
                if raise_on_failure and job.status == "failed":
                    raise JobFailed(job)
                return job
            if deadline is not None and time.monotonic() + poll > deadline:
                raise JobTimeout(job, timeout or 0)
            time.sleep(poll)

    def children(self, fs_id: int, path: str = "/", *, limit: int = 100, cursor: str | None = None) -> ChildrenPage:
        return self._call(ep.children(fs_id, path, limit, cursor))

    def iter_children(self, fs_id: int, path: str = "/", *, page_size: int = 1000) -> Iterator[EntryOut]:
        cursor: str | None = None
        while True:
            page = self.children(fs_id, path, limit=page_size, cursor=cursor)
            yield from page.items
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    def entry(self, fs_id: int, path: str) -> EntryOut:
        return self._call(ep.entry(fs_id, path))

    def iter_export(self, fs_id: int) -> Iterator[dict[str, Any]]:
        """The tree of ``fs_id`` as upload lines (dicts), streamed."""
        for line in self._export_chunks(fs_id, lines=True):
            if line.strip():
                yield json.loads(line)

    def export(self, fs_id: int, dest: str | os.PathLike[str] | IO[bytes]) -> int:
        """Write the JSON Lines export of ``fs_id`` to a path or binary file; returns the byte count."""
        if isinstance(dest, (str, os.PathLike)):
            with Path(dest).open("wb") as f:
                return self.export(fs_id, f)
        written = 0
        for chunk in self._export_chunks(fs_id, lines=False):
            dest.write(chunk)
            written += len(chunk)
        return written

    def _export_chunks(self, fs_id: int, *, lines: bool) -> Iterator[Any]:
        yield from self._stream(ep.export(fs_id), lines=lines)

    def _stream(self, call: Call[Any], *, lines: bool) -> Iterator[Any]:
        response = self._send(call, stream=True)
        error = None
        try:
            yield from (response.iter_lines() if lines else response.iter_bytes())
        except httpx.TransportError as exc:
            error = transport_error(exc, call.method, call.path)
        finally:
            response.close()
        if error is not None:
            raise error
