"""Typed errors of the Python client: one class per HTTP status family, carrying the server's message.

The server answers errors as ``{"detail": "<message>"}`` (Alation's token endpoints add a ``code``),
``{"detail": [{"loc": [...], "msg": ..., "type": ...}]}`` for request validation (422), or
``{"error": "<message>"}`` on the Alation-compatible VFS upload and job paths. :func:`error_for`
turns any of them into the matching exception with a one-line ``message``.

No exception built here contains a token: requests (whose headers carry ``TOKEN``) are never
attached, only the method, the URL path and the server's answer.
"""

from __future__ import annotations

from typing import Any

import httpx


class FileRegistryError(Exception):
    """An answer of the server that is not a success, or (``TransportError``) no answer at all.

    ``status_code`` is the HTTP status (None for transport errors), ``message`` the server's message,
    ``body`` the decoded JSON error body (or the text when it was not JSON).
    """

    def __init__(
        self,
        status_code: int | None,
        message: str,
        body: Any = None,
        *,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        self.status_code = status_code
        self.message = message
        self.body = body
        self.method = method
        self.path = path
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.method} {self.path}: " if self.method and self.path else ""
        status = f"{self.status_code} " if self.status_code is not None else ""
        return f"{where}{status}{self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.status_code!r}, {self.message!r})"


class BadRequest(FileRegistryError):
    """400: a malformed request (bad file name, unknown file system id, bad query option)."""


class Unauthorized(FileRegistryError):
    """401: no token, or a bad, expired or revoked one (also: an invalid refresh token)."""


class Forbidden(FileRegistryError):
    """403: the caller is not an admin."""


class NotFound(FileRegistryError):
    """404: unknown source, file, file system, job or path."""


class Conflict(FileRegistryError):
    """409: a name already taken, or a file tracked in another state."""


class PayloadTooLarge(FileRegistryError):
    """413: an upload body above the server's limit."""


class ValidationFailed(FileRegistryError):
    """422: the body or a parameter failed validation (e.g. an SFTPConfig without any auth method)."""


class RateLimited(FileRegistryError):
    """429: too many failed token exchanges; ``retry_after`` is the server's Retry-After in seconds."""

    def __init__(self, *args: Any, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(*args, **kwargs)


class ServerError(FileRegistryError):
    """5xx: the server failed (500), the SFTP server failed (502) or timed out (504)."""


class TransportError(FileRegistryError):
    """No HTTP answer: connection refused, DNS failure, timeout, broken connection."""


class JobFailed(FileRegistryError):
    """``wait_for_job(..., raise_on_failure=True)``: the job ended ``failed``; ``job`` is its status."""

    def __init__(self, job: Any) -> None:
        self.job = job
        super().__init__(None, f"job {job.id} failed: {job.msg}", job.model_dump())


class JobTimeout(FileRegistryError, TimeoutError):
    """``wait_for_job``: the job was still running when the timeout ran out; ``job`` is its last status."""

    def __init__(self, job: Any, timeout: float) -> None:
        self.job = job
        super().__init__(None, f"job {job.id} still {job.status!r} after {timeout:g} s", job.model_dump())


_BY_STATUS: dict[int, type[FileRegistryError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    422: ValidationFailed,
    429: RateLimited,
}


def message_of(body: Any, fallback: str) -> str:
    """The human message of an error body, whichever of the server's shapes it has."""
    if isinstance(body, dict):
        for key in ("detail", "error", "message"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value
            if isinstance(value, list) and value:  # request validation: [{"loc": [...], "msg": ...}]
                parts = []
                for item in value:
                    if isinstance(item, dict):
                        loc = ".".join(str(p) for p in item.get("loc", ()) if p not in ("body", "query", "path"))
                        msg = str(item.get("msg", "invalid"))
                        parts.append(f"{loc}: {msg}" if loc else msg)
                    else:
                        parts.append(str(item))
                return "; ".join(parts)
    if isinstance(body, str) and body.strip():
        return body.strip()[:500]
    return fallback


def error_for(response: httpx.Response) -> FileRegistryError:
    """The exception for a non-success ``response`` (its body must have been read)."""
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    status = response.status_code
    message = message_of(body, response.reason_phrase or f"HTTP {status}")
    where = {"method": response.request.method, "path": response.request.url.path}
    if status == 429:
        retry = response.headers.get("Retry-After")
        try:
            retry_after = float(retry) if retry is not None else None
        except ValueError:
            retry_after = None
        return RateLimited(status, message, body, retry_after=retry_after, **where)
    cls = _BY_STATUS.get(status) or (ServerError if status >= 500 else FileRegistryError)
    return cls(status, message, body, **where)


def transport_error(exc: httpx.TransportError, method: str, path: str) -> TransportError:
    # str(exc) is httpx's/httpcore's message (e.g. "[Errno 111] Connection refused"); never headers.
    return TransportError(None, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__,
                          method=method, path=path)
