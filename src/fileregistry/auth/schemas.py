"""Wire shapes of the token endpoints (Alation's) and of user management."""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, Field

from fileregistry.errors import BadRequest

_DIGITS = re.compile(r"^[0-9]{1,18}$")


class RefreshTokenRequest(BaseModel):
    refresh_token: str
    user_id: int | str = Field(description="The user's id, as an int or a numeric string.")


class AccessTokenRequest(BaseModel):
    api_access_token: str
    user_id: int | str = Field(description="The user's id, as an int or a numeric string.")


class RefreshTokenInfo(BaseModel):
    user_id: int
    created_at: str
    token_expires_at: str
    token_status: str
    last_used_at: str | None
    name: str
    refresh_token: str = Field(description="Echo of the token the caller sent.")


class AccessTokenInfo(BaseModel):
    user_id: int
    created_at: str
    token_expires_at: str
    token_status: str
    api_access_token: str


class TokenError(BaseModel):
    detail: str
    code: str


class UserOut(BaseModel):
    id: int
    username: str
    is_admin: bool
    created_at: str
    disabled_at: str | None


class UserInfo(BaseModel):
    """Subset of Alation's ``/integration/v1/userinfo/`` shape (the SDK's ``get_authenticated_user``)."""

    id: int
    username: str
    display_name: str
    role: str
    ts_created: str


def parse_body(raw: bytes, token_field: str) -> tuple[str, int | None]:
    """(token, user_id) from a token-endpoint body.

    Malformed bodies are a 400 whose message names fields only: FastAPI's own validation errors
    echo the input, which here would be a secret. A ``user_id`` that is not an int or a numeric
    string cannot name any user: it comes back as None and the caller answers "invalid token".
    """
    try:
        body: Any = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict) or not isinstance(body.get(token_field), str) or "user_id" not in body:
        raise BadRequest(f"Body must be a JSON object with a string {token_field!r} and a 'user_id'.")
    user_id = body["user_id"]
    if isinstance(user_id, bool):
        parsed = None
    elif isinstance(user_id, int):
        parsed = user_id
    elif isinstance(user_id, str) and _DIGITS.fullmatch(user_id.strip()):
        parsed = int(user_id.strip())
    else:
        parsed = None
    return body[token_field], parsed
