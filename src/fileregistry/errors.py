"""One error model. Domain code raises these; each adapter (HTTP, CLI, UI) renders them once.

Domain code never imports ``HTTPException``. Messages must never contain a secret.
"""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    status_code: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, *, body: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        # A few wire contracts (Alation's) have their own error body shape.
        self.body = body

    def to_body(self) -> dict[str, Any]:
        return self.body if self.body is not None else {"detail": self.message}


class BadRequest(AppError):
    status_code = 400
    code = "bad_request"


class Unauthorized(AppError):
    status_code = 401
    code = "unauthorized"


class Forbidden(AppError):
    status_code = 403
    code = "forbidden"


class NotFound(AppError):
    status_code = 404
    code = "not_found"


class Conflict(AppError):
    status_code = 409
    code = "conflict"


class PayloadTooLarge(AppError):
    status_code = 413
    code = "payload_too_large"


class InvalidInput(AppError):
    status_code = 422
    code = "invalid_input"


class TooManyRequests(AppError):
    status_code = 429
    code = "too_many_requests"


class ServiceUnavailable(AppError):
    """Our own database is down or busy (locked): the request may succeed if retried."""

    status_code = 503
    code = "service_unavailable"


class UpstreamError(AppError):
    """The remote (SFTP) side failed: refused, unreachable, auth, host key, I/O."""

    status_code = 502
    code = "upstream_error"


class UpstreamTimeout(AppError):
    status_code = 504
    code = "upstream_timeout"
