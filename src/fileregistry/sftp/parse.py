"""Parsing SFTPConfig bodies by hand: FastAPI's 422 would echo the input, and it holds secrets."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import ValidationError

from fileregistry.errors import InvalidInput
from fileregistry.sftp.schemas import SFTPConfig

REDACTED = "********"


def describe(exc: ValidationError, what: str = "SFTPConfig", prefix: str = "") -> str:
    # loc and msg only: pydantic's "input" would echo secrets.
    parts = []
    for err in exc.errors(include_input=False, include_url=False):
        loc = ".".join(str(p) for p in (*([prefix] if prefix else []), *err.get("loc", ())) if p != "__root__")
        msg = err.get("msg", "invalid").removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return f"Invalid {what}: " + "; ".join(parts)


def json_object(raw: bytes, what: str) -> dict[str, Any] | None:
    """The body as a JSON object; None for an empty body."""
    if not raw.strip():
        return None
    try:
        data: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidInput(f"Invalid {what}: the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"Invalid {what}: the body must be a JSON object")
    return data


def sftp_config(data: Any, *, prefix: str = "", allow_redacted: bool = False) -> SFTPConfig:
    if not isinstance(data, dict):
        raise InvalidInput(f"Invalid SFTPConfig: {prefix or 'the body'} must be a JSON object")
    try:
        config = SFTPConfig.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(describe(exc, prefix=prefix)) from None
    if not allow_redacted:
        for f in ("password", "private_key"):
            v = getattr(config, f)
            if v is not None and v.get_secret_value() == REDACTED:
                raise InvalidInput(
                    f"Invalid SFTPConfig: {f} is the redaction placeholder {REDACTED!r} from GET "
                    "/generic/sftp-config; send {\"source\": \"<name>\"} instead, or read the config with "
                    "include_secrets=true"
                )
    return config
