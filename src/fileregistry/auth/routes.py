"""HTTP routes (auth): Alation's token endpoints and admin user listing. Thin adapters."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from fileregistry.auth import tokens, users
from fileregistry.auth.crypto import format_ts
from fileregistry.auth.deps import AdminUser, CurrentUser
from fileregistry.auth.ratelimit import client_key, get_limiter
from fileregistry.auth.schemas import (
    AccessTokenInfo,
    AccessTokenRequest,
    RefreshTokenInfo,
    RefreshTokenRequest,
    TokenError,
    UserInfo,
    UserOut,
    parse_body,
)
from fileregistry.deps import SessionDep, SettingsDep
from fileregistry.errors import Unauthorized

router = APIRouter()

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Malformed body"},
    401: {"model": TokenError, "description": "Unknown, wrong-user, revoked or disabled-user token"},
    429: {"description": "Too many failed exchanges from this client; see Retry-After"},
}


def _body_doc(model: type) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": model.model_json_schema()}}}}


def _route(path: str, endpoint: Callable, **kwargs: Any) -> None:
    """Serve ``path`` with and without its trailing slash, without a redirect (clients POST)."""
    router.add_api_route(path, endpoint, methods=["POST"], responses=_ERRORS, **kwargs)
    router.add_api_route(path.rstrip("/"), endpoint, methods=["POST"], include_in_schema=False, **kwargs)


async def _guarded(request: Request, action: Callable[[], Awaitable[Any]]) -> Any:
    """Refuse rate-limited clients; count 401s against the client."""
    limiter, key = get_limiter(request), client_key(request)
    wait = limiter.retry_after(key)
    if wait:
        return JSONResponse(
            status_code=429,
            content={"detail": f"Too many failed token attempts. Retry in {wait} seconds."},
            headers={"Retry-After": str(wait)},
        )
    try:
        return await action()
    except Unauthorized:
        limiter.record_failure(key)
        raise


async def validate_refresh_token(request: Request, session: SessionDep) -> Any:
    """Check a refresh token. 200 with `token_status` ACTIVE or EXPIRED; 401 when unknown."""

    async def act() -> RefreshTokenInfo:
        token, user_id = parse_body(await request.body(), "refresh_token")
        if user_id is None:
            raise tokens.invalid_refresh_token()
        row, status = await tokens.validate_refresh_token(session, token, user_id)
        return RefreshTokenInfo(
            user_id=row.user_id, created_at=format_ts(row.created_at), token_expires_at=format_ts(row.expires_at),
            token_status=status, last_used_at=format_ts(row.last_used_at), name=row.name, refresh_token=token,
        )

    return await _guarded(request, act)


async def create_api_access_token(request: Request, session: SessionDep, settings: SettingsDep) -> Any:
    """Exchange an active refresh token for an API access token (send it as the `TOKEN` header)."""

    async def act() -> AccessTokenInfo:
        token, user_id = parse_body(await request.body(), "refresh_token")
        if user_id is None:
            raise tokens.invalid_refresh_token()
        issued = await tokens.create_access_token(
            session, token, user_id, lifetime=timedelta(hours=settings.access_token_ttl_hours)
        )
        return _access_info(issued.row, tokens.ACTIVE, issued.token)

    return await _guarded(request, act)


async def validate_api_access_token(request: Request, session: SessionDep) -> Any:
    """Check an API access token. 200 with `token_status` ACTIVE or EXPIRED; 401 when unknown."""

    async def act() -> AccessTokenInfo:
        token, user_id = parse_body(await request.body(), "api_access_token")
        if user_id is None:
            raise tokens.invalid_access_token()
        row, status = await tokens.validate_access_token(session, token, user_id)
        return _access_info(row, status, token)

    return await _guarded(request, act)


def _access_info(row: Any, status: str, token: str) -> AccessTokenInfo:
    return AccessTokenInfo(
        user_id=row.user_id, created_at=format_ts(row.created_at), token_expires_at=format_ts(row.expires_at),
        token_status=status, api_access_token=token,
    )


_route("/integration/v1/validateRefreshToken/", validate_refresh_token, response_model=RefreshTokenInfo,
       openapi_extra=_body_doc(RefreshTokenRequest), tags=["tokens"])
_route("/integration/v1/createAPIAccessToken/", create_api_access_token, response_model=AccessTokenInfo,
       status_code=201, openapi_extra=_body_doc(RefreshTokenRequest), tags=["tokens"])
_route("/integration/v1/validateAPIAccessToken/", validate_api_access_token, response_model=AccessTokenInfo,
       openapi_extra=_body_doc(AccessTokenRequest), tags=["tokens"])


@router.get("/integration/v1/userinfo/", response_model=UserInfo, tags=["users"])
async def userinfo(user: CurrentUser) -> UserInfo:
    """The calling user (Alation SDK's `user.get_authenticated_user()`). Any valid token."""
    return UserInfo(
        id=user.id, username=user.username, display_name=user.username,
        role="SERVER_ADMIN" if user.is_admin else "VIEWER", ts_created=format_ts(user.created_at) or "",
    )


@router.get("/api/v1/users/", response_model=list[UserOut], tags=["users"])
async def list_users(_admin: AdminUser, session: SessionDep) -> list[UserOut]:
    """All users. Admin only."""
    return [
        UserOut(id=u.id, username=u.username, is_admin=u.is_admin, created_at=format_ts(u.created_at) or "",
                disabled_at=format_ts(u.disabled_at))
        for u in await users.list_users(session)
    ]
