"""HTTP routes (sftp). Thin: parse, call one service function, return.

The body is parsed by :func:`sftp_config` rather than by FastAPI's model binding because FastAPI's 422
echoes the offending input, and the input here carries passwords and private keys. Instead of a
config, every endpoint takes a stored source: ``{"source": "<name>"}`` or ``?source=<name>``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse

from fileregistry.auth.deps import AdminUser
from fileregistry.deps import SettingsDep
from fileregistry.errors import InvalidInput
from fileregistry.sftp import monitor, parse
from fileregistry.sftp.connections import Sessions
from fileregistry.sftp.parse import json_object
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
from fileregistry.sources import service as sources

router = APIRouter(tags=["sftp"])


async def sftp_config(request: Request) -> SFTPConfig:
    """The body's SFTPConfig, or the stored config of ``{"source": name}`` / ``?source=name``."""
    data = json_object(await request.body(), "SFTPConfig")
    name = request.query_params.get("source")
    if data is not None and "source" in data:
        if name is not None and data["source"] != name:
            raise InvalidInput("source is given twice (query and body) with different values")
        name = data["source"]
        if not isinstance(name, str):
            raise InvalidInput("source must be a string: the name of a stored SFTP source")
        others = sorted((set(data) - {"source"}) & set(SFTPConfig.model_fields))
        if others:
            raise InvalidInput(f"give either a source or an SFTPConfig, not both (also got: {', '.join(others)})")
    if name is not None:
        state = request.app.state
        return await sources.resolve_config(state.sessions, state.cipher, sources.check_name(name))
    if data is None:
        raise InvalidInput("Invalid SFTPConfig: a JSON body is required (host, username and one of password, "
                           "key_path, private_key), or {\"source\": \"<name>\"}")
    return parse.sftp_config(data)


def get_sessions(request: Request) -> Sessions:
    return request.app.state.sessions


Config = Annotated[SFTPConfig, Depends(sftp_config)]
SessionsDep = Annotated[Sessions, Depends(get_sessions)]
_BODY = {
    "requestBody": {
        "required": False,
        "description": "An SFTPConfig, or {\"source\": \"<name>\"} (or no body and ?source=<name>).",
        "content": {"application/json": {"schema": {"anyOf": [
            SFTPConfig.model_json_schema(),
            {"type": "object", "properties": {"source": {"type": "string"}}, "required": ["source"]},
        ]}}},
    },
    "parameters": [{"name": "source", "in": "query", "required": False, "schema": {"type": "string"},
                    "description": "A stored source's name, instead of a body."}],
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


@router.get(
    "/sftp/file/{filename:path}",
    response_class=FileResponse,
    responses={200: {"content": {"application/octet-stream": {}}, "description": "The file's bytes."}},
    openapi_extra=_BODY,
)
async def download_file(
    filename: str, config: Config, settings: SettingsDep, sessions: SessionsDep,
    state: str = Query(..., description="The file's state: new, processing, completed or error."),
) -> FileResponse:
    """The local mirror copy of a tracked file, for DAG workers that do not share the server's disk
    (`?state=processing` after mark-processing; the name is the one in that state)."""
    path, _size = await monitor.mirrored_file(config, filename, state, settings=settings, sessions=sessions)
    return FileResponse(path, media_type="application/octet-stream", filename=filename)


@router.delete("/sftp/clear-registry", response_model=MessageResponse, openapi_extra=_BODY)
async def clear_registry(
    _admin: AdminUser, config: Config, settings: SettingsDep, sessions: SessionsDep
) -> MessageResponse:
    """Forget this connection's files, events, scans and mirror (admin only). The SFTP server is not touched."""
    return await monitor.clear_registry(config, settings=settings, sessions=sessions)
