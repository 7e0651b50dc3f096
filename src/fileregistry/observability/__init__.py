"""Metrics (/metrics), readiness (/readyz), structured logs and the request-id middleware.

``install(app)`` wires the middleware and routes into an app; :mod:`.metrics` holds the
process-wide counters (``record_scan``, ``record_error``) that other layers call.
"""

from __future__ import annotations

from fastapi import FastAPI


def install(app: FastAPI) -> None:
    """Add the /metrics and /readyz routes and the request-context middleware to ``app``."""
    from fileregistry.observability.middleware import RequestContextMiddleware
    from fileregistry.observability.routes import router

    app.include_router(router)
    app.add_middleware(RequestContextMiddleware)
