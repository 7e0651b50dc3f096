"""``/generic/sftp-config``: the seed's config store. Thin: parse, call the service, return."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from fileregistry.auth.deps import AdminUser, CurrentUser
from fileregistry.errors import Forbidden, InvalidInput
from fileregistry.sftp import parse
from fileregistry.sftp.schemas import MessageResponse, SFTPConfig
from fileregistry.sources import service
from fileregistry.sources.schemas import SourceView

router = APIRouter(tags=["sources"])


class _State:
    def __init__(self, request: Request) -> None:
        self.sessions = request.app.state.sessions
        self.cipher = request.app.state.cipher


StateDep = Annotated[_State, Depends(_State)]

_PUT_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {
            "type": "object",
            "required": ["config"],
            "properties": {
                "config": SFTPConfig.model_json_schema(),
                "scan_interval_seconds": {"type": ["integer", "null"], "minimum": 1, "maximum": 31_536_000},
            },
        }}},
    }
}
MIN_INTERVAL, MAX_INTERVAL = 1, 365 * 24 * 3600


@router.get("/generic/sftp-config", response_model=list[SourceView])
async def get_configs(
    user: CurrentUser,
    st: StateDep,
    category: Annotated[str | None, Query(description="A source name: only its config.")] = None,
    include_secrets: Annotated[bool, Query(description="Admins only: passwords and keys in full.")] = False,
) -> list[SourceView]:
    """Stored SFTP configs: all of them, or the one named by `category` (the seed's source)."""
    if include_secrets and not user.is_admin:
        raise Forbidden("include_secrets=true is for admins only")
    if category is not None:
        return [await service.get_source(st.sessions, st.cipher, service.check_name(category),
                                         include_secrets=include_secrets)]
    return await service.list_sources(st.sessions, st.cipher, include_secrets=include_secrets)


def _parse_put(data: dict[str, Any] | None) -> tuple[SFTPConfig, int | None]:
    if data is None:
        raise InvalidInput('a JSON body is required: {"config": {SFTPConfig}, "scan_interval_seconds": N|null}')
    unknown = sorted(set(data) - {"config", "scan_interval_seconds"})
    if unknown:
        raise InvalidInput(f"unknown fields {', '.join(unknown)}: the body is "
                           '{"config": {SFTPConfig}, "scan_interval_seconds": N|null}')
    if "config" not in data:
        raise InvalidInput("config: field required (the SFTPConfig)")
    config = parse.sftp_config(data["config"], prefix="config", allow_redacted=True)
    interval = data.get("scan_interval_seconds")
    if interval is not None and (isinstance(interval, bool) or not isinstance(interval, int)
                                 or not MIN_INTERVAL <= interval <= MAX_INTERVAL):
        raise InvalidInput(f"scan_interval_seconds: an integer from {MIN_INTERVAL} to {MAX_INTERVAL}, or null "
                           "for no scheduled scans")
    return config, interval


@router.put("/generic/sftp-config/{source}", response_model=SourceView, openapi_extra=_PUT_BODY)
async def put_config(source: str, request: Request, _admin: AdminUser, st: StateDep) -> SourceView:
    """Create or replace a stored source (admin). A secret sent as `********` keeps the stored one."""
    config, interval = _parse_put(parse.json_object(await request.body(), "source config"))
    return await service.put_source(st.sessions, st.cipher, source, config, interval)


@router.delete("/generic/sftp-config/{source}", response_model=MessageResponse)
async def delete_config(source: str, _admin: AdminUser, st: StateDep) -> MessageResponse:
    """Delete a stored source (admin). Its registry, mirror and scan history stay (see clear-registry)."""
    await service.delete_source(st.sessions, service.check_name(source))
    return MessageResponse(message=f"SFTP source {source!r} deleted")
