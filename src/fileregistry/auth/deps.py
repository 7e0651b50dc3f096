"""FastAPI dependencies: who is calling (``CurrentUser``) and must they be an admin (``AdminUser``).

Requests authenticate with the header ``TOKEN: <api access token>`` (any case, no ``Bearer``),
exactly as Alation's API does. Use::

    from fileregistry.auth.deps import AdminUser, CurrentUser

    @router.delete("/sftp/clear-registry")
    async def clear(user: AdminUser, ...): ...

or, when the user object is not needed, ``dependencies=[Depends(admin_user)]``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from fileregistry.auth import tokens
from fileregistry.auth.models import User
from fileregistry.errors import Forbidden, Unauthorized

NOT_PROVIDED = "Authentication credentials were not provided."
FAILED = "Authentication failed"
ADMIN_REQUIRED = "This action requires an admin user."

# Declared as a security scheme so /docs shows an "Authorize" box; header lookup is case-insensitive.
token_header = APIKeyHeader(
    name="TOKEN", auto_error=False, scheme_name="TOKEN",
    description="API access token from POST /integration/v1/createAPIAccessToken/ (no 'Bearer' prefix).",
)


async def current_user(request: Request, token: Annotated[str | None, Security(token_header)]) -> User:
    if not token:
        raise Unauthorized(NOT_PROVIDED)
    # Its own short connection, not the request's session: a request that then waits (for a
    # connection lock, an SFTP server) must not hold a pooled database connection meanwhile, or
    # N such requests exhaust the pool and starve the one holding the lock.
    user = await tokens.authenticate_on(request.app.state.read_engine, token)
    if user is None:
        raise Unauthorized(FAILED)
    return user


async def admin_user(user: Annotated[User, Depends(current_user)]) -> User:
    if not user.is_admin:
        raise Forbidden(ADMIN_REQUIRED)
    return user


CurrentUser = Annotated[User, Depends(current_user)]
AdminUser = Annotated[User, Depends(admin_user)]
