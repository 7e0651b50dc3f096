"""Every endpoint of the server, described once as a :class:`Call` (path, body, parsing).

Results are the server's own pydantic schemas (``fileregistry.*.schemas``), or plain dicts where the
server answers free-form JSON.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qs, quote, urlsplit

import httpx
from pydantic import BaseModel, SecretStr

from fileregistry.auth.schemas import AccessTokenInfo, RefreshTokenInfo, UserInfo, UserOut
from fileregistry.client._core import Body, Call
from fileregistry.client.errors import NotFound
from fileregistry.sftp.schemas import (
    ConnectionKeyResponse,
    MarkFinishedResponse,
    MarkProcessingResponse,
    MessageResponse,
    NewFilesResponse,
    ScanResult,
    SFTPConfig,
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

M = TypeVar("M", bound=BaseModel)

ConfigLike = SFTPConfig | Mapping[str, Any]
UploadData = bytes | str | os.PathLike[str] | Iterable[Any] | AsyncIterable[Any]


def _model(cls: type[M]) -> Any:
    return lambda resp: cls.model_validate(resp.json())


def _models(cls: type[M]) -> Any:
    return lambda resp: [cls.model_validate(item) for item in resp.json()]


def _json(resp: httpx.Response) -> Any:
    return resp.json()


def _nothing(_resp: httpx.Response) -> None:
    return None


def _segment(value: str | int) -> str:
    # One path segment: "/" and everything else special is percent-encoded, so a bad name reaches the
    # server as that name (and gets its 400) instead of addressing another endpoint.
    return quote(str(value), safe="")


# --------------------------------------------------------------------------- health and tokens


def healthz() -> Call[dict[str, Any]]:
    return Call("GET", "/healthz", _json, authenticated=False)


def readyz() -> Call[dict[str, Any]]:
    return Call("GET", "/readyz", _json, authenticated=False)


def metrics() -> Call[str]:
    return Call("GET", "/metrics", lambda resp: resp.text, authenticated=False)


def create_access_token(refresh_token: str, user_id: int | str) -> Call[AccessTokenInfo]:
    return Call("POST", "/integration/v1/createAPIAccessToken/", _model(AccessTokenInfo),
                json={"refresh_token": refresh_token, "user_id": user_id}, authenticated=False)


def validate_refresh_token(refresh_token: str, user_id: int | str) -> Call[RefreshTokenInfo]:
    return Call("POST", "/integration/v1/validateRefreshToken/", _model(RefreshTokenInfo),
                json={"refresh_token": refresh_token, "user_id": user_id}, authenticated=False)


def validate_access_token(access_token: str, user_id: int | str) -> Call[AccessTokenInfo]:
    return Call("POST", "/integration/v1/validateAPIAccessToken/", _model(AccessTokenInfo),
                json={"api_access_token": access_token, "user_id": user_id}, authenticated=False)


def userinfo() -> Call[UserInfo]:
    return Call("GET", "/integration/v1/userinfo/", _model(UserInfo))


def list_users() -> Call[list[UserOut]]:
    return Call("GET", "/api/v1/users/", _models(UserOut))


# --------------------------------------------------------------------------- sftp


def config_dict(config: ConfigLike) -> dict[str, Any]:
    """An SFTPConfig (or a dict) as the JSON the server expects, secrets in clear (it is the request)."""
    if isinstance(config, SFTPConfig):
        items: Iterable[tuple[str, Any]] = iter(config)
    elif isinstance(config, Mapping):
        items = config.items()
    else:
        raise TypeError(f"config must be an SFTPConfig or a dict, not {type(config).__name__}")
    return {k: (v.get_secret_value() if isinstance(v, SecretStr) else v) for k, v in items if v is not None}


def sftp_body(source: str | None, config: ConfigLike | None) -> dict[str, Any]:
    """``{"source": name}`` for a stored source, else the SFTPConfig itself."""
    if (source is None) == (config is None):
        raise TypeError("pass exactly one of source= (a stored source's name) or config= (an SFTPConfig or dict)")
    if source is not None:
        if not isinstance(source, str) or not source:
            raise TypeError("source must be a non-empty string")
        return {"source": source}
    return config_dict(config)  # type: ignore[arg-type]


def connection_key(source: str | None, config: ConfigLike | None) -> Call[ConnectionKeyResponse]:
    return Call("POST", "/sftp/connection-key", _model(ConnectionKeyResponse), json=sftp_body(source, config))


def scan(source: str | None, config: ConfigLike | None) -> Call[ScanResult]:
    return Call("POST", "/sftp/scan", _model(ScanResult), json=sftp_body(source, config), long=True)


def status(source: str | None, config: ConfigLike | None) -> Call[StatusResponse]:
    return Call("GET", "/sftp/status", _model(StatusResponse), json=sftp_body(source, config))


def new_files(source: str | None, config: ConfigLike | None) -> Call[NewFilesResponse]:
    return Call("GET", "/sftp/new-files", _model(NewFilesResponse), json=sftp_body(source, config))


def mark_processing(filename: str, source: str | None, config: ConfigLike | None) -> Call[MarkProcessingResponse]:
    # long: a mirror copy deleted by hand is downloaded again during the move.
    return Call("POST", f"/sftp/mark-processing/{_segment(filename)}", _model(MarkProcessingResponse),
                json=sftp_body(source, config), long=True)


def download_file(filename: str, state: str, source: str | None, config: ConfigLike | None) -> Call[None]:
    """Streamed by the clients (``download_file``); ``parse`` is unused."""
    return Call("GET", f"/sftp/file/{_segment(filename)}", _nothing, params={"state": state},
                json=sftp_body(source, config), long=True)


def mark_completed(filename: str, source: str | None, config: ConfigLike | None) -> Call[MarkFinishedResponse]:
    return Call("POST", f"/sftp/mark-completed/{_segment(filename)}", _model(MarkFinishedResponse),
                json=sftp_body(source, config), long=True)


def mark_error(filename: str, source: str | None, config: ConfigLike | None) -> Call[MarkFinishedResponse]:
    return Call("POST", f"/sftp/mark-error/{_segment(filename)}", _model(MarkFinishedResponse),
                json=sftp_body(source, config), long=True)


def clear_registry(source: str | None, config: ConfigLike | None) -> Call[MessageResponse]:
    return Call("DELETE", "/sftp/clear-registry", _model(MessageResponse), json=sftp_body(source, config))


# --------------------------------------------------------------------------- stored sources

SOURCES = "/generic/sftp-config"


def _source_views(resp: httpx.Response) -> list[SourceView]:
    from fileregistry.sources.schemas import SourceView

    return [SourceView.model_validate(item) for item in resp.json()]


def _source_view(resp: httpx.Response) -> SourceView:
    from fileregistry.sources.schemas import SourceView

    return SourceView.model_validate(resp.json())


def list_sources(category: str | None = None, include_secrets: bool = False) -> Call[list[SourceView]]:
    params: dict[str, Any] = {}
    if category is not None:
        params["category"] = category
    if include_secrets:
        params["include_secrets"] = "true"
    return Call("GET", SOURCES, _source_views, params=params or None)


def get_source(name: str, include_secrets: bool = False) -> Call[SourceView]:
    def parse(resp: httpx.Response) -> SourceView:
        views = _source_views(resp)
        if not views:  # the server answers 404 itself; this guards an empty list all the same
            raise NotFound(404, f"SFTP source '{name}' not found", resp.json(), method="GET", path=SOURCES)
        return views[0]

    call = list_sources(name, include_secrets)
    call.parse = parse  # type: ignore[assignment]
    return call  # type: ignore[return-value]


def put_source(name: str, config: ConfigLike, scan_interval_seconds: int | None = None) -> Call[SourceView]:
    return Call("PUT", f"{SOURCES}/{_segment(name)}", _source_view,
                json={"config": config_dict(config), "scan_interval_seconds": scan_interval_seconds})


def delete_source(name: str) -> Call[MessageResponse]:
    return Call("DELETE", f"{SOURCES}/{_segment(name)}", _model(MessageResponse))


# --------------------------------------------------------------------------- virtual file systems


def create_filesystem(name: str, delimiter: str = "/") -> Call[FileSystemOut]:
    return Call("POST", "/api/v1/filesystem/", _model(FileSystemOut), json={"name": name, "delimiter": delimiter})


def list_filesystems() -> Call[list[FileSystemOut]]:
    return Call("GET", "/api/v1/filesystem/", _models(FileSystemOut))


def get_filesystem(fs_id: int) -> Call[FileSystemOut]:
    return Call("GET", f"/api/v1/filesystem/{int(fs_id)}/", _model(FileSystemOut))


def delete_filesystem(fs_id: int) -> Call[None]:
    return Call("DELETE", f"/api/v1/filesystem/{int(fs_id)}/", _nothing)


def upload(fs_id: int, data: UploadData, *, dry_run: bool = False, on_error: str = "fail",
           gzip: bool | None = None) -> Call[UploadAccepted]:
    """``data``: the whole body (bytes/str), a file path (``.gz`` is sent gzip-encoded unless ``gzip`` says
    otherwise) or an iterable (sync or async) of lines: dicts, str or bytes."""
    if on_error not in ("fail", "skip"):
        raise ValueError("on_error must be 'fail' or 'skip'")
    if gzip is None:
        gzip = isinstance(data, os.PathLike) and os.fspath(data).endswith(".gz")
    params: dict[str, str] = {"on_error": on_error}
    if dry_run:
        params["dry_run"] = "true"
    headers = {"Content-Type": "application/json"}
    if gzip:
        headers["Content-Encoding"] = "gzip"
    return Call("POST", f"/api/v1/bulk_metadata/file_upload/{int(fs_id)}/", _model(UploadAccepted),
                params=params, body=Body(data), headers=headers, long=True)


def job_status(job_id: int) -> Call[JobStatus]:
    return Call("GET", "/api/v1/bulk_metadata/job/", _model(JobStatus), params={"id": int(job_id)})


def job_errors_page(job_id: int, limit: int = 100, cursor: int = 0) -> Call[tuple[list[JobErrorOut], int | None]]:
    """One page of a job's errors and the cursor of the next page (None on the last)."""

    def parse(resp: httpx.Response) -> tuple[list[JobErrorOut], int | None]:
        items = [JobErrorOut.model_validate(item) for item in resp.json()]
        nxt = resp.headers.get("X-Next-Page")
        next_cursor = None
        if nxt:
            values = parse_qs(urlsplit(nxt).query).get("cursor")
            next_cursor = int(values[0]) if values else (items[-1].id if items else None)
        return items, next_cursor

    return Call("GET", "/api/job_error/", parse, params={"job_id": int(job_id), "limit": limit, "cursor": cursor})


def children(fs_id: int, path: str = "/", limit: int = 100, cursor: str | None = None) -> Call[ChildrenPage]:
    params: dict[str, Any] = {"path": path, "limit": limit}
    if cursor is not None:
        params["cursor"] = cursor
    return Call("GET", f"/api/v1/filesystem/{int(fs_id)}/children", _model(ChildrenPage), params=params)


def entry(fs_id: int, path: str) -> Call[EntryOut]:
    return Call("GET", f"/api/v1/filesystem/{int(fs_id)}/entry", _model(EntryOut), params={"path": path})


def export(fs_id: int) -> Call[None]:
    """Streamed by the clients (``iter_export`` / ``export``); ``parse`` is unused."""
    return Call("GET", f"/api/v1/filesystem/{int(fs_id)}/export", _nothing, long=True)


JOB_DONE = ("successful", "failed")
