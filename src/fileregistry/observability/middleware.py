"""Request context: a request id for every HTTP request, one access log line, HTTP metrics.

Pure ASGI (not ``BaseHTTPMiddleware``): no extra task per request, streaming bodies pass through
untouched, and the contextvar set here is visible to the handler and to every log call it makes.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from fileregistry.observability.logs import request_id_var
from fileregistry.observability.metrics import record_error, record_request

access_log = logging.getLogger("fileregistry.access")
error_log = logging.getLogger("fileregistry.errors")

_SANE_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Answered every few seconds by probes and scrapers: their successes are logged at DEBUG, not INFO.
PROBES = frozenset({"/healthz", "/readyz", "/metrics"})
UNMATCHED = "unmatched"  # the route label of requests no route matched (404s): raw paths would explode it


def incoming_request_id(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The caller's ``X-Request-ID`` when it is a sane token (<= 128 of ``[A-Za-z0-9._-]``)."""
    for name, value in headers:
        if name.lower() == b"x-request-id":
            try:
                rid = value.decode("ascii")
            except UnicodeDecodeError:
                return None
            return rid if _SANE_ID.fullmatch(rid) else None
    return None


def route_template(scope: dict[str, Any]) -> str:
    """``/api/job/{job_id}/`` rather than ``/api/job/17/``: bounded label and log cardinality."""
    route = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


class RequestContextMiddleware:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = incoming_request_id(scope.get("headers") or []) or uuid.uuid4().hex
        token = request_id_var.set(rid)
        # For the 500 handler, which runs outside this middleware (request.state.request_id).
        scope.setdefault("state", {})["request_id"] = rid
        status = 500
        started = time.perf_counter()
        id_header = (b"x-request-id", rid.encode("ascii"))

        async def send_with_id(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), id_header]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # Unhandled: Starlette's outer error middleware answers 500 (without our header, it is
            # outside us). Count and log it here, where the request id is still known.
            status = 500
            record_error("internal")
            error_log.exception("unhandled error")
            raise
        finally:
            try:
                self._finish(scope, status, time.perf_counter() - started)
            finally:
                request_id_var.reset(token)

    @staticmethod
    def _finish(scope: dict[str, Any], status: int, duration: float) -> None:
        method = scope.get("method", "")
        route = route_template(scope)
        record_request(method if method in _METHODS else "other", route, status, duration)
        # Path without the query string; no headers (TOKEN is a secret), no bodies.
        path = scope.get("path", "")
        level = logging.DEBUG if route in PROBES and status < 400 else logging.INFO
        access_log.log(
            level, "%s %s %s", method, path, status,
            extra={"method": method, "route": route, "path": path, "status": status,
                   "duration_ms": round(duration * 1000, 3)},
        )
