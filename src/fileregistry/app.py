"""The HTTP application factory. Resources are built in the lifespan, never at import."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from sqlalchemy import exc as sa_exc
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from fileregistry import __version__
from fileregistry.config import Settings
from fileregistry.db import create_engine_for, session_factory
from fileregistry.errors import AppError, ServiceUnavailable
from fileregistry.observability import install as install_observability
from fileregistry.observability.metrics import record_error

log = logging.getLogger("fileregistry")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        settings.resolved_mirror_dir.mkdir(parents=True, exist_ok=True)
        engine = create_engine_for(settings.resolved_database_url, pool_size=settings.db_pool_size)
        if settings.auto_migrate:
            from fileregistry.migrate import upgrade

            await upgrade(engine)
        app.state.settings = settings
        app.state.engine = engine
        # Single-statement reads (the token check, browse pages) need no transaction: on PostgreSQL
        # autocommit skips the BEGIN and ROLLBACK round trips (same pool, same connections). On
        # SQLite switching the mode costs more than it saves (measured), so reads use it as is.
        app.state.read_engine = (engine if engine.dialect.name == "sqlite"
                                 else engine.execution_options(isolation_level="AUTOCOMMIT"))
        app.state.sessions = session_factory(engine)
        from fileregistry.sources.crypto import load_cipher, verify_cipher

        app.state.cipher = load_cipher(settings)
        await verify_cipher(app.state.sessions, app.state.cipher)  # a wrong key stops the start, clearly
        async with contextlib.AsyncExitStack() as stack:
            # Feature components that own background resources register here.
            for start in _component_starters():
                await stack.enter_async_context(start(app))
            yield
        await engine.dispose()

    app = FastAPI(
        title="fileregistry",
        version=__version__,
        description="SFTP landing-zone monitor and Alation-compatible virtual file system catalog.",
        lifespan=lifespan,
    )
    app.state.settings = settings

    @app.exception_handler(AppError)
    async def _app_error(_request: Request, exc: AppError) -> JSONResponse:
        record_error(type(exc).__name__)
        return JSONResponse(status_code=exc.status_code, content=exc.to_body())

    @app.exception_handler(sa_exc.OperationalError)
    @app.exception_handler(sa_exc.InterfaceError)
    @app.exception_handler(sa_exc.TimeoutError)
    async def _database_unavailable(_request: Request, exc: Exception) -> JSONResponse:
        # The database is down, unreachable or locked by another writer: a retry may succeed, so 503
        # (not 500). Logged by type only: SQLAlchemy's text carries the statement and its parameters.
        orig = getattr(exc, "orig", None)
        log.warning("database unavailable: %s%s", type(exc).__name__, f" ({type(orig).__name__})" if orig else "")
        err = ServiceUnavailable("the database is unavailable or busy; retry later")
        record_error(type(err).__name__)
        return JSONResponse(status_code=err.status_code, content=err.to_body(), headers={"Retry-After": "5"})

    @app.exception_handler(Exception)
    async def _internal_error(request: Request, _exc: Exception) -> JSONResponse:
        # Starlette's outermost middleware answers with this (after the request-id middleware has
        # logged the traceback), then re-raises. Same body shape as every other error; no details.
        rid = getattr(request.state, "request_id", None)
        detail = f"internal error (request id {rid})" if rid else "internal error"
        return JSONResponse(status_code=500, content={"detail": detail})

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's default 422 echoes the offending input, which may be a password, key or token.
        # Keep where and what, never the value.
        record_error("validation")
        detail = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", "invalid"), "type": e.get("type", "invalid")}
            for e in exc.errors()
        ]
        return JSONResponse(status_code=422, content={"detail": detail})

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """Liveness: answers while the process is alive."""
        return {"status": "ok"}

    _include_routers(app)
    install_observability(app)  # /metrics, /readyz; request ids, access log (inside the slash fix)
    app.add_middleware(_CollapseLeadingSlashes)
    return app


class _CollapseLeadingSlashes:
    """``//api/...`` -> ``/api/...``: Alation clients built with a trailing-slash host send it, and
    the answer must not be a 404 or a redirect. Only leading slashes are touched."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] in ("http", "websocket") and scope["path"].startswith("//"):
            scope = dict(scope, path="/" + scope["path"].lstrip("/"))
            if scope.get("raw_path"):
                scope["raw_path"] = b"/" + scope["raw_path"].lstrip(b"/")
        await self.app(scope, receive, send)


def _component_starters() -> list:
    """Async context managers ``f(app)`` started with the app (job runner, SFTP pool, ...)."""
    from fileregistry.jobs.runner import job_runner
    from fileregistry.sftp.pool import app_session_pool
    from fileregistry.sources.scheduler import scheduler

    starters: list = [job_runner, app_session_pool, scheduler]
    return starters


def _include_routers(app: FastAPI) -> None:
    from fastapi import Depends

    from fileregistry.auth.deps import current_user
    from fileregistry.auth.routes import router as auth_router
    from fileregistry.sftp.routes import router as sftp_router
    from fileregistry.sources.routes import router as sources_router
    from fileregistry.vfs.routes import router as vfs_router

    # Open without a token: the token endpoints, /healthz, /docs, /openapi.json. The auth router
    # guards its own non-token routes; every other router needs a valid TOKEN header.
    app.include_router(auth_router)
    app.include_router(sftp_router, dependencies=[Depends(current_user)])
    app.include_router(sources_router, dependencies=[Depends(current_user)])
    app.include_router(vfs_router, dependencies=[Depends(current_user)])

    from fileregistry.web import install as install_ui

    install_ui(app)  # /ui: server-rendered pages, signed session cookie instead of the TOKEN header
