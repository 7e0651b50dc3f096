"""HTTP routes (sftp). Thin: parse, call one service function, return.

The body is parsed by :func:`sftp_config` rather than by FastAPI's model binding because FastAPI's 422
echoes the offending input, and the input here carries passwords and private keys.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request
from pydantic import ValidationError

from fileregistry.auth.deps import AdminUser
from fileregistry.deps import SettingsDep
from fileregistry.errors import InvalidInput
from fileregistry.sftp import monitor
from fileregistry.sftp.connections import Sessions
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

router = APIRouter(tags=["sftp"])


def _describe(exc: ValidationError) -> str:
    # loc and msg only: pydantic's "input" would echo secrets.
    parts = []
    for err in exc.errors(include_input=False, include_url=False):
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "__root__")
        msg = err.get("msg", "invalid").removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "Invalid SFTPConfig: " + "; ".join(parts)


async def sftp_config(request: Request) -> SFTPConfig:
    raw = await request.body()
    if not raw.strip():
        raise InvalidInput("Invalid SFTPConfig: a JSON body is required (host, username and one of password, "
                           "key_path, private_key)")
    try:
        data: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidInput("Invalid SFTPConfig: the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise InvalidInput("Invalid SFTPConfig: the body must be a JSON object")
    try:
        return SFTPConfig.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(_describe(exc)) from None


def get_sessions(request: Request) -> Sessions:
    return request.app.state.sessions


Config = Annotated[SFTPConfig, Depends(sftp_config)]
SessionsDep = Annotated[Sessions, Depends(get_sessions)]
_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": SFTPConfig.model_json_schema()}},
    }
}


@router.post("/sftp/connection-key", response_model=ConnectionKeyResponse, openapi_extra=_BODY)
async def connection_key(config: Config) -> ConnectionKeyResponse:
    """The key under which this connection's registry and mirror are kept."""
    return monitor.get_connection_key(config)


@router.post("/sftp/scan", response_model=ScanResult, openapi_extra=_BODY)
async def scan(config: Config, settings: SettingsDep, sessions: SessionsDep) -> ScanResult:
    """Download and register the files of `<remote_path>/new` that are untracked or changed."""
    return await monitor.scan(config, settings=settings, sessions=sessions)


@router.get("/sftp/status", response_model=StatusResponse, openapi_extra=_BODY)
async def status(config: Config, sessions: SessionsDep) -> StatusResponse:
    """The whole registry of this connection (JSON body, as in the seed)."""
    return await monitor.status(config, sessions=sessions)


@router.get("/sftp/new-files", response_model=NewFilesResponse, openapi_extra=_BODY)
async def new_files(config: Config, sessions: SessionsDep) -> NewFilesResponse:
    """Files tracked in state `new` (JSON body, as in the seed)."""
    return await monitor.new_files(config, sessions=sessions)


@router.post("/sftp/mark-processing/{filename:path}", response_model=MarkProcessingResponse, openapi_extra=_BODY)
async def mark_processing(
    filename: str, config: Config, settings: SettingsDep, sessions: SessionsDep
) -> MarkProcessingResponse:
    """Move `new/<filename>` to `processing/<stem>_<UTC YYYYmmddHHMMSS><ext>`."""
    return await monitor.mark_processing(config, filename, settings=settings, sessions=sessions)


@router.post(
    "/sftp/mark-completed/{filename:path}",
    response_model=MarkFinishedResponse,
    response_model_exclude_none=True,
    openapi_extra=_BODY,
)
async def mark_completed(
    filename: str, config: Config, settings: SettingsDep, sessions: SessionsDep
) -> MarkFinishedResponse:
    """Move `processing/<filename>` to `completed/` (a name collision adds `_1`, `_2`, ...)."""
    return await monitor.mark_completed(config, filename, settings=settings, sessions=sessions)


@router.post(
    "/sftp/mark-error/{filename:path}",
    response_model=MarkFinishedResponse,
    response_model_exclude_none=True,
    openapi_extra=_BODY,
)
async def mark_error(
    filename: str, config: Config, settings: SettingsDep, sessions: SessionsDep
) -> MarkFinishedResponse:
    """Move `processing/<filename>` to `error/` (a name collision adds `_1`, `_2`, ...)."""
    return await monitor.mark_error(config, filename, settings=settings, sessions=sessions)


@router.delete("/sftp/clear-registry", response_model=MessageResponse, openapi_extra=_BODY)
async def clear_registry(
    _admin: AdminUser, config: Config, settings: SettingsDep, sessions: SessionsDep
) -> MessageResponse:
    """Forget this connection's files, events, scans and mirror (admin only). The SFTP server is not touched."""
    return await monitor.clear_registry(config, settings=settings, sessions=sessions)
